"""What the scheduled detectors count, read from hourly rollups for the baseline and from raw steps for the window.

``counts(agent_id=, since=, until=)`` gives one agent's LLM outputs, refusals, tool calls, tool errors and
output-length histogram in [since, until): whole hours from ``DetectorRollup`` rows (rolled on first need,
for every agent at once, and kept), the ragged edges (under an hour each side) from the steps themselves. So a
7-day baseline costs 168 rows per agent instead of 7 days of steps, and the cost no longer grows with the data.
``window_counts`` reads the last hour raw, with a sample trace of each kind of finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction

from incidents.detection.models import DetectorRollup, RolledHour
from incidents.detection.scheduled._sql import STEP, TRACE, fetchall

HOUR = timedelta(hours=1)
ROLLUP_BIN = 25  # tokens per bin of the rolled length histogram (length_drift's default bin)
MAX_BINS = 200  # outputs longer than MAX_BINS * bin share the last bin
SETTLED = timedelta(minutes=10)  # an hour is marked rolled once it ended this long ago: later spans are rare

_APOS = "['’]"
# Case-insensitive POSIX regex matched in PostgreSQL (``~*``) against the start of an LLM output.
REFUSAL_RE = (
    rf"^\W*(i can{_APOS}?t|i cannot|i{_APOS}m sorry,? but i can{_APOS}?t|i am sorry,? but i can(no|{_APOS})t"
    rf"|i am unable to|i{_APOS}m unable to|i{_APOS}m not able to|i won{_APOS}t be able to help)"
    r"( help| assist| do that| comply| provide| support|\M)"
)
# A tool call's failure: an error status, or a 4xx code in the error message / at the start of the output / as
# a status field.
IS_ERROR = r"""(s.status = 'error'
    OR s.error_message ~ '(^|[^0-9.])4[0-9]{2}([^0-9]|$)'
    OR s.output ~* '^\W*(HTTP[/0-9. ]*)?4[0-9]{2}\M|"status(_code)?"\s*:\s*4[0-9]{2}\M')"""

# One pass over the steps of [start, end): per agent, hour and length bin, every count the detectors use.
_GROUPED = f"""
    SELECT t.agent_id, date_trunc('hour', s.started_at) AS hour,
           CASE WHEN s.kind = 'llm' AND s.tokens_out > 0 THEN LEAST(s.tokens_out / {ROLLUP_BIN}, {MAX_BINS}) END AS b,
           count(*) FILTER (WHERE s.kind = 'llm') AS llm,
           count(*) FILTER (WHERE s.kind = 'llm' AND s.output ~* %(re)s) AS refusals,
           count(*) FILTER (WHERE s.kind = 'tool') AS tools,
           count(*) FILTER (WHERE s.kind = 'tool' AND {IS_ERROR}) AS errors,
           count(*) FILTER (WHERE s.kind = 'llm' AND s.tokens_out > 0) AS sized,
           max(s.trace_id) FILTER (WHERE s.kind = 'llm' AND s.output ~* %(re)s) AS refusal_trace,
           max(s.trace_id) FILTER (WHERE s.kind = 'tool' AND {IS_ERROR}) AS error_trace
    FROM {STEP} s JOIN {TRACE} t ON t.id = s.trace_id
    WHERE s.started_at >= %(start)s AND s.started_at < %(end)s AND s.kind IN ('llm', 'tool')
"""
_ROLL = f"""
    INSERT INTO {DetectorRollup._meta.db_table}
        (agent_id, hour, llm_outputs, llm_refusals, tool_calls, tool_errors, length_bins)
    SELECT agent_id, hour, sum(llm), sum(refusals), sum(tools), sum(errors),
           coalesce(jsonb_object_agg(b, sized) FILTER (WHERE b IS NOT NULL), '{{}}'::jsonb)
    FROM ({_GROUPED} GROUP BY 1, 2, 3) AS g
    GROUP BY agent_id, hour
    ON CONFLICT (agent_id, hour) DO UPDATE SET
        llm_outputs = EXCLUDED.llm_outputs, llm_refusals = EXCLUDED.llm_refusals, tool_calls = EXCLUDED.tool_calls,
        tool_errors = EXCLUDED.tool_errors, length_bins = EXCLUDED.length_bins
"""


@dataclass
class Counts:
    llm_outputs: int = 0
    llm_refusals: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    length_bins: dict[int, int] = field(default_factory=dict)  # ROLLUP_BIN-token bins
    refusal_trace: int | None = None  # a trace with a refusal (raw reads only)
    error_trace: int | None = None  # a trace with a tool error (raw reads only)

    def add(self, llm: int, refusals: int, tools: int, errors: int, bins: dict[int, int]) -> None:
        self.llm_outputs += llm
        self.llm_refusals += refusals
        self.tool_calls += tools
        self.tool_errors += errors
        for b, n in bins.items():
            self.length_bins[b] = self.length_bins.get(b, 0) + n

    def bins(self, width: int) -> dict[int, int]:
        """The length histogram in ``width``-token bins (a multiple of ROLLUP_BIN)."""
        merged: dict[int, int] = {}
        for b, n in self.length_bins.items():
            wide = min(b * ROLLUP_BIN // width, MAX_BINS)
            merged[wide] = merged.get(wide, 0) + n
        return merged


def _floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime) -> datetime:
    floor = _floor(moment)
    return floor if floor == moment else floor + HOUR


def raw_counts(*, agent_id: int, since: datetime, until: datetime) -> Counts:
    """One agent's counts in [since, until) read from the steps (for the window and a baseline's edges)."""
    out = Counts()
    if since >= until:
        return out
    rows = fetchall(
        f"""SELECT b, sum(llm), sum(refusals), sum(tools), sum(errors), sum(sized), max(refusal_trace),
                   max(error_trace)
            FROM ({_GROUPED} AND t.agent_id = %(agent)s GROUP BY 1, 2, 3) AS g GROUP BY b""",
        {"re": REFUSAL_RE, "start": since, "end": until, "agent": agent_id},
    )
    for b, llm, refusals, tools, errors, sized, refusal_trace, error_trace in rows:
        out.add(int(llm), int(refusals), int(tools), int(errors), {int(b): int(sized)} if b is not None else {})
        out.refusal_trace = max(filter(None, (out.refusal_trace, refusal_trace)), default=None)
        out.error_trace = max(filter(None, (out.error_trace, error_trace)), default=None)
    return out


def rollups_ensure(*, since: datetime, until: datetime) -> int:
    """Roll every whole hour in [since, until) not rolled yet, for all agents at once; returns hours rolled.

    An hour that ended at least SETTLED ago is marked rolled and never read raw again; a younger one is rolled
    but not marked, so the next call rolls it again with whatever arrived since.
    """
    start, end = _ceil(since), _floor(until)
    if start >= end:
        return 0
    done = set(RolledHour.objects.filter(hour__gte=start, hour__lt=end).values_list("hour", flat=True))
    missing: list[datetime] = []
    hour = start
    while hour < end:
        if hour not in done:
            missing.append(hour)
        hour += HOUR
    settled_before = _floor(datetime.now(UTC) - SETTLED)
    runs = _contiguous(missing)
    with transaction.atomic(), connection.cursor() as cursor:
        for first, last in runs:
            cursor.execute(_ROLL, {"re": REFUSAL_RE, "start": first, "end": last + HOUR})
        settled = [RolledHour(hour=h) for h in missing if h + HOUR <= settled_before]
        RolledHour.objects.bulk_create(settled, ignore_conflicts=True)
    return len(missing)


def rollups_forget(*, since: datetime) -> int:
    """Spans from ``since`` on arrived after their hours were rolled (a drained spool, an import): those hours
    are rolled again when next read. One indexed DELETE on a small table, and nothing at all for live spans."""
    if since >= datetime.now(UTC) - SETTLED:
        return 0
    deleted, _ = RolledHour.objects.filter(hour__gte=_floor(since)).delete()
    return deleted


def rollups_drop_before(cutoff: datetime) -> int:
    """Retention (``traces.hooks.retention_sweepers``): the rollups of hours whose steps are gone."""
    deleted, _ = DetectorRollup.objects.filter(hour__lt=cutoff).delete()
    RolledHour.objects.filter(hour__lt=cutoff).delete()
    return deleted


def _contiguous(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if runs and runs[-1][1] + HOUR == hour:
            runs[-1] = (runs[-1][0], hour)
        else:
            runs.append((hour, hour))
    return runs


def counts(*, agent_id: int, since: datetime, until: datetime) -> Counts:
    """One agent's counts in [since, until): whole hours from the rollups, the edges from the steps."""
    start, end = _ceil(since), _floor(until)
    if start >= end:
        return raw_counts(agent_id=agent_id, since=since, until=until)
    rollups_ensure(since=start, until=end)
    out = raw_counts(agent_id=agent_id, since=since, until=start)
    edge = raw_counts(agent_id=agent_id, since=end, until=until)
    out.add(edge.llm_outputs, edge.llm_refusals, edge.tool_calls, edge.tool_errors, edge.length_bins)
    rows = DetectorRollup.objects.filter(agent_id=agent_id, hour__gte=start, hour__lt=end).values_list(
        "llm_outputs", "llm_refusals", "tool_calls", "tool_errors", "length_bins"
    )
    for llm, refusals, tools, errors, bins in rows:
        out.add(llm, refusals, tools, errors, {int(b): int(n) for b, n in _items(bins)})
    return out


def _items(bins: Any) -> list[tuple[Any, Any]]:
    return list(bins.items()) if isinstance(bins, dict) else []
