"""The one "now" the services stamp: ``timezone.now()``, unless a caller set the clock with ``at()``.

Services and the model defaults that services rely on call ``clock.now()`` instead of
``timezone.now()``, so the demo history loader can replay months of incidents through the real
services at the times they happened (the timeline is append-only; backdating afterwards would mean
writing around the services). Nothing else sets the clock: in production ``now()`` is
``timezone.now()``. The override lives in a context variable, so it holds only for the code that
runs inside ``at()`` in that thread or task, and is gone when the block ends.

Selectors that decide what "recent" means for a page (the last 24 hours, the past week) keep
``timezone.now()``: the pages read the real present.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.utils import timezone

_override: ContextVar[datetime | None] = ContextVar("firebreak_clock_override", default=None)


def now() -> datetime:
    """The time a write is stamped with: the time set by the innermost ``at()``, else ``timezone.now()``."""
    return _override.get() or timezone.now()


@contextmanager
def at(when: datetime) -> Iterator[datetime]:
    """Inside the block, ``now()`` returns ``when`` (a timezone-aware datetime; it does not advance).

    Blocks nest (the innermost wins) and the previous setting comes back on exit, also on an
    exception. Raises ValueError for a naive ``when``.
    """
    if timezone.is_naive(when):
        raise ValueError("the clock needs a timezone-aware time")
    token = _override.set(when)
    try:
        yield when
    finally:
        _override.reset(token)


def is_set() -> bool:
    """True inside ``at()``: the code is replaying the past (the demo history), not living the present."""
    return _override.get() is not None
