"""Retention: steps older than ``FIREBREAK_RETENTION_DAYS`` go, a whole day partition at a time.

For each day partition wholly older than the cutoff (midnight UTC, that many days before today), in a
transaction of its own: detach it, copy the steps of kept traces back into the table (no day partition
covers them any more, so they land in the default partition), drop it. Then, in one more transaction:
the default partition's steps older than the cutoff that no kept trace owns, the payloads of that time,
the traces that started before the cutoff and hold no step any more (their alerts, incidents and eval
cases let go of them as Django's delete does), and what higher apps derived from that time
(``traces.hooks.retention_sweepers``: the detectors' hourly rollups). The default partition is the only place rows are
deleted one by one, and it holds only what fell outside the day partitions.

Kept: golden runs, and what ``traces.hooks.retention_keepers`` name (traces of an incident, of a
post-mortem, of an eval case). Dropping a partition takes a brief exclusive lock on the steps table;
``lock_timeout`` bounds the wait, so a long read makes retention leave that day (and the traces and
payloads of the run) to the next run instead of queueing ingest behind it.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg.errors import LockNotAvailable

from traces import hooks
from traces.models import Trace
from traces.retention.partitions import DEFAULT, LOCK_KEY, PARENT, day_start, partitions_list

LOCK_TIMEOUT = "5s"
DELETE_BATCH = 2000


@dataclass(frozen=True)
class DroppedDay:
    name: str
    day: date
    steps: int
    kept_steps: int


@dataclass
class RetentionReport:
    days: int
    cutoff: datetime | None  # None: retention is off (FIREBREAK_RETENTION_DAYS=0)
    dry_run: bool
    dropped: list[DroppedDay] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # partitions a long query held past LOCK_TIMEOUT: next run
    default_steps: int = 0  # steps deleted from the default partition
    payloads: int = 0
    traces: int = 0
    kept_traces: int = 0  # kept traces that had steps before the cutoff

    @property
    def steps(self) -> int:
        return sum(d.steps - d.kept_steps for d in self.dropped) + self.default_steps


def retention_cutoff(days: int) -> datetime:
    """Everything that started before this goes: midnight UTC, ``days`` days before today."""
    return day_start(timezone.now().astimezone(UTC).date() - timedelta(days=days))


def retention_run(*, days: int | None = None, dry_run: bool = False) -> RetentionReport:
    """Drop what is older than ``days`` (default ``FIREBREAK_RETENTION_DAYS``); ``dry_run`` counts it only."""
    days = settings.FIREBREAK_RETENTION_DAYS if days is None else days
    if days <= 0:
        return RetentionReport(days=days, cutoff=None, dry_run=dry_run)
    cutoff = retention_cutoff(days)
    report = RetentionReport(days=days, cutoff=cutoff, dry_run=dry_run)
    kept: set[int] = set()
    for partition in partitions_list():
        if partition.day is None or day_start(partition.day + timedelta(days=1)) > cutoff:
            continue
        try:
            dropped = _drop_day(partition.name, partition.day, dry_run, kept)
        except OperationalError as exc:
            if not isinstance(exc.__cause__, LockNotAvailable):
                raise
            report.busy.append(partition.name)
            continue
        report.dropped.append(dropped)
    if report.busy:  # their steps still stand: their traces and payloads wait for the next run with them
        report.kept_traces = len(kept)
        return report
    with transaction.atomic(), connection.cursor() as cur:
        _lock(cur)
        _keep(cur)
        old_unkept = "started_at < %s AND trace_id NOT IN (SELECT id FROM fb_retention_keep)"
        cur.execute(f"SELECT DISTINCT trace_id FROM {DEFAULT} WHERE started_at < %s AND trace_id IN "
                    "(SELECT id FROM fb_retention_keep)", [cutoff])  # fmt: skip
        kept.update(row[0] for row in cur.fetchall())
        report.default_steps = _delete_or_count(cur, DEFAULT, old_unkept, [cutoff], dry_run)
        report.payloads = _delete_or_count(cur, "traces_steppayload", old_unkept, [cutoff], dry_run)
        gone = _traces_gone(cur, cutoff, dry_run)
        report.traces = len(gone)
        if not dry_run:
            for start in range(0, len(gone), DELETE_BATCH):
                Trace.objects.filter(pk__in=gone[start : start + DELETE_BATCH]).delete()
            for sweep in hooks.retention_sweepers:
                sweep(cutoff)
    report.kept_traces = len(kept)
    return report


def _drop_day(name: str, day: date, dry_run: bool, kept: set[int]) -> DroppedDay:
    """Detach one day partition, copy its kept traces' steps back into the table (the default partition takes
    them), drop it: one transaction. Adds the kept traces found to ``kept``."""
    with transaction.atomic(), connection.cursor() as cur:
        _lock(cur)
        _keep(cur)
        cur.execute(
            f"SELECT count(*), count(*) FILTER (WHERE trace_id IN (SELECT id FROM fb_retention_keep)), "
            f"array_agg(DISTINCT trace_id) FILTER (WHERE trace_id IN (SELECT id FROM fb_retention_keep)) "
            f"FROM {name}"
        )
        steps, kept_steps, kept_ids = cur.fetchone()
        kept.update(kept_ids or ())
        if not dry_run:
            # Foreign keys are checked at commit; a table with checks still pending cannot be dropped.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
            kept_rows = "trace_id IN (SELECT id FROM fb_retention_keep)"
            cur.execute(f"INSERT INTO {PARENT} SELECT * FROM {name} WHERE {kept_rows}")
            cur.execute(f"DROP TABLE {name}")
    return DroppedDay(name, day, steps, kept_steps)


def _lock(cur) -> None:
    cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _keep(cur) -> None:
    """``fb_retention_keep``: the primary keys of the traces retention keeps, for this transaction."""
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS fb_retention_keep (id bigint PRIMARY KEY) ON COMMIT DROP")
    cur.execute("INSERT INTO fb_retention_keep SELECT id FROM traces_trace WHERE is_golden ON CONFLICT DO NOTHING")
    for keeper in hooks.retention_keepers:
        sql, params = keeper().query.sql_with_params()
        cur.execute(f"INSERT INTO fb_retention_keep SELECT k.id FROM ({sql}) AS k(id) WHERE k.id IS NOT NULL "
                    "ON CONFLICT DO NOTHING", params)  # fmt: skip


def _delete_or_count(cur, table: str, where: str, params: list, dry_run: bool) -> int:
    cur.execute(f"SELECT count(*) FROM {table} WHERE {where}" if dry_run else f"DELETE FROM {table} WHERE {where}",
                params)  # fmt: skip
    return cur.fetchone()[0] if dry_run else cur.rowcount


def _traces_gone(cur, cutoff: datetime, dry_run: bool) -> list[int]:
    """Traces that started before the cutoff, are not kept, and hold no step (after a dry run: none before it).

    A trace that started before the cutoff but has later steps (it ran past midnight) stays until those go.
    """
    later = "s.started_at >= %s" if dry_run else "true"
    cur.execute(
        "SELECT t.id FROM traces_trace t WHERE t.started_at < %s "
        "AND t.id NOT IN (SELECT id FROM fb_retention_keep) "
        f"AND NOT EXISTS (SELECT 1 FROM {PARENT} s WHERE s.trace_id = t.id AND {later}) ORDER BY t.id",
        [cutoff, cutoff] if dry_run else [cutoff],
    )
    return [row[0] for row in cur.fetchall()]
