"""The SDK's side of issue 15's fields, against documents the server's key signed: by_level falls to the
nearest lower handler, pinned, Blocked for a blocked id until its expiry, malformed fields refused."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from firebreak_sdk import Blocked, FirebreakStop, GateClosed, GateUnavailable, NoHandlerForLevel

from .conftest import gate_doc

LADDER = ["full", "restricted", "retrieval", "keyword", "static"]


def until(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_by_level_picks_the_level_or_the_nearest_lower_one(put, make_gate):
    handlers = {"full": "run", "retrieval": "docs", "static": "canned"}
    gate = make_gate(max_staleness=0)
    for level, expected in [("full", "run"), ("restricted", "docs"), ("keyword", "canned"), ("static", "canned")]:
        put(gate_doc(level=level, levels=LADDER, version=LADDER.index(level) + 1))
        assert gate.level == level
        assert gate.by_level(handlers) == expected
    with pytest.raises(NoHandlerForLevel):
        gate.by_level({"full": "run"})


def test_an_old_server_without_the_fields_means_full_unpinned_nothing_blocked(put, make_gate):
    put(gate_doc())
    gate = make_gate(max_staleness=0)
    assert (gate.level, gate.pinned) == ("full", None)
    assert gate.by_level({"full": "run"}) == "run"
    gate.check(session="s", user="u", tenant="t")


def test_pinned(put, make_gate):
    put(gate_doc(pinned={"prompt_version": "p1", "model_version": "m1"}))
    assert make_gate(max_staleness=0).pinned == {"prompt_version": "p1", "model_version": "m1"}


def test_blocked_raises_for_that_one_only_until_it_expires(put, make_gate):
    put(
        gate_doc(
            blocked={
                "sessions": [{"id": "s-1", "expires_at": until(0.3)}],
                "users": [{"id": "u-1", "expires_at": until(60)}],
                "tenants": [{"id": "old", "expires_at": until(-5)}],
            },
        )
    )
    gate = make_gate(max_staleness=60)
    with pytest.raises(Blocked) as exc:
        gate.check(session="s-1")
    assert isinstance(exc.value, GateClosed) and isinstance(exc.value, FirebreakStop)
    assert (exc.value.kind, exc.value.id) == ("session", "s-1")
    with pytest.raises(Blocked):
        gate.check(tool="search", session="s-2", user="u-1")
    gate.check(session="s-2", user="u-2", tenant="old")  # others run; an expired block holds nothing
    gate.check()
    time.sleep(0.35)
    gate.check(session="s-1")  # lifted at its expiry, with no new document


@pytest.mark.parametrize(
    "bad",
    [
        {"level": 3},
        {"levels": "full"},
        {"pinned": {"prompt_version": "p1"}},
        {"blocked": {"sessions": [{"id": "s"}]}},
        {"blocked": {"users": [{"id": "u", "expires_at": "tomorrow"}]}},
        {"blocked": []},
    ],
)
def test_malformed_fields_are_refused_and_the_gate_fails_closed(put, make_gate, bad):
    put(gate_doc(**bad))
    with pytest.raises(GateUnavailable):
        make_gate(max_staleness=0).check()
