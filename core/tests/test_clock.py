"""core.clock: the override applies inside at(), is gone after it, nests, and is per context."""

import contextvars
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from core import clock

PAST = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_now_is_the_real_time_without_an_override():
    before = timezone.now()
    assert before <= clock.now() <= timezone.now()


def test_at_sets_now_inside_the_block_and_restores_it_after():
    with clock.at(PAST) as when:
        assert when == PAST
        assert clock.now() == PAST
        assert clock.now() == PAST  # it does not advance
    assert clock.now() - timezone.now() < timedelta(seconds=1)


def test_at_nests_and_restores_the_outer_time():
    later = PAST + timedelta(hours=2)
    with clock.at(PAST):
        with clock.at(later):
            assert clock.now() == later
        assert clock.now() == PAST


def test_override_is_gone_after_an_exception():
    with pytest.raises(RuntimeError), clock.at(PAST):
        raise RuntimeError("boom")
    assert clock.now() != PAST


def test_override_is_per_context():
    seen: dict[str, datetime] = {}
    with clock.at(PAST):
        thread = threading.Thread(target=lambda: seen.setdefault("thread", clock.now()))
        thread.start()
        thread.join()
        other = contextvars.Context().run(clock.now)
    assert seen["thread"] != PAST
    assert other != PAST


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"), clock.at(datetime(2026, 3, 4)):
        pass
