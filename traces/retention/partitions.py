"""The day partitions of ``traces_step``: which exist, and making the next ones.

- ``traces_step_pYYYYMMDD`` holds the steps that started that day, [00:00, next 00:00) UTC.
- ``traces_step_default`` holds what no day partition covers: a span whose start falls on a day not made
  (a clock far off, history loaded before its days existed) and the steps of kept traces whose day
  retention dropped. Ingest therefore never fails for want of a partition.

Making a day whose steps already sit in the default moves them into the new partition first (PostgreSQL
refuses to add a range that the default partition holds rows of).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

PARENT = "traces_step"
DEFAULT = "traces_step_default"
PREFIX = "traces_step_p"
DAYS_AHEAD = 3
# One advisory lock for every change of the partitions (beat's run, the command, a benchmark).
LOCK_KEY = 0x5354_4550  # "STEP"


@dataclass(frozen=True)
class Partition:
    name: str
    day: date | None  # None: the default partition
    rows: int  # PostgreSQL's estimate (pg_class.reltuples; -1 before the first ANALYZE is read as 0)


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _bounds(day: date) -> str:
    """The partition bound of a day, as literals (DDL takes no parameters)."""
    lo, hi = day_start(day), day_start(day + timedelta(days=1))
    return f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"


def partitions_list() -> list[Partition]:
    """Every partition of the steps table, the day partitions oldest first, the default last."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname, greatest(c.reltuples, 0)::bigint FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [PARENT],
        )
        rows = cur.fetchall()
    days = [Partition(name, _day_of(name), n) for name, n in rows if name.startswith(PREFIX)]
    return days + [Partition(name, None, n) for name, n in rows if not name.startswith(PREFIX)]


def _day_of(name: str) -> date:
    return datetime.strptime(name.removeprefix(PREFIX), "%Y%m%d").date()


def partitions_ensure(*, first: date | None = None, last: date | None = None) -> list[str]:
    """Make the day partitions from ``first`` to ``last`` (default: today to ``DAYS_AHEAD`` days on, UTC)
    that do not exist yet; returns the names made. One transaction, under the partitions' lock."""
    today = timezone.now().astimezone(UTC).date()
    first = first or today
    last = last or today + timedelta(days=DAYS_AHEAD)
    made = []
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        existing = {p.name for p in partitions_list()}
        day = first
        while day <= last:
            if partition_name(day) not in existing:
                _make(cur, day)
                made.append(partition_name(day))
            day += timedelta(days=1)
    return made


def _make(cur, day: date) -> None:
    name, lo, hi = partition_name(day), day_start(day), day_start(day + timedelta(days=1))
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE started_at >= %s AND started_at < %s)", [lo, hi])
    if not cur.fetchone()[0]:
        cur.execute(f"CREATE TABLE {name} PARTITION OF {PARENT} {_bounds(day)}")
        return
    # The default holds steps of that day: move them into the new table, then attach it (PostgreSQL builds
    # the parent's indexes on it and checks the default no longer holds any row of the range).
    cur.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING CONSTRAINTS)")
    cur.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE started_at >= %s AND started_at < %s RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved",
        [lo, hi],
    )
    cur.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} {_bounds(day)}")
