"""Reads for the blast radius: what a signature touched in a window, and the last run recorded.

Step-level criteria are checked with a correlated ``EXISTS`` over ``traces_step`` (served by
the partial indexes on ``tool_name`` and ``action_hash``); trace-level criteria and the window
(on ``Trace.started_at``) filter the trace row. Every count is one SQL aggregate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Substr
from django.utils import timezone

from core.db import IContains
from incidents.blast_radius.signature import REGEX_PREFIX, BlastSignature
from incidents.models import Incident, TimelineEntry, TimelineKind
from traces.models import Step, Trace, TraceStatus, step_arguments_text

TRACE_LIMIT = 50
TIMELINE_USER_LIMIT = 1000


RUNNING_SESSIONS_MAX = 500


class RunningAgent(TypedDict):
    slug: str
    name: str
    state: str
    running: int  # its traces of the signature still running
    sessions: list[str]  # their session ids (the "stop these runs" button blocks them)


class BlastUser(TypedDict):
    """One affected user, as ``blast_users`` rows and the CSV export give it."""

    user_id: str
    trajectories: int
    first_seen: datetime
    last_seen: datetime
    still_running: int


class BlastLast(TypedDict):
    """The latest blast-radius timeline entry and the counts it recorded (None: not recorded)."""

    entry: TimelineEntry
    trajectories: int | None
    users: int | None
    running: int | None
    data: dict[str, Any]


@dataclass
class BlastResult:
    signature: BlastSignature
    since: datetime
    until: datetime
    trajectories: int
    distinct_users: int
    still_running: int
    quiet: int  # marked running, but silent for FIREBREAK_RUN_QUIET_MINUTES: ended without saying so
    user_ids: list[str]
    traces: list[Trace]
    running_agents: list[RunningAgent] = field(default_factory=list)
    computed_at: datetime = field(default_factory=timezone.now)

    @property
    def containment_failed(self) -> bool:
        return self.still_running > 0

    def window(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}

    def as_data(self, *, user_limit: int = TIMELINE_USER_LIMIT) -> dict[str, Any]:
        return {
            "signature": self.signature.as_dict(),
            "window": self.window(),
            "trajectories": self.trajectories,
            "users": self.distinct_users,
            "still_running": self.still_running,
            "user_ids": self.user_ids[:user_limit],
            "computed_at": self.computed_at.isoformat(),
        }


def _matching_steps(signature: BlastSignature, since: datetime) -> QuerySet[Step]:
    # A trace starts with its earliest step (ingest keeps the least start), so a trace of the window has no step
    # before ``since``: the bound is free to add, and lets the planner read only the window's steps (the BRIN
    # index on started_at; partitions by day once the table is partitioned).
    steps = Step.objects.filter(trace=OuterRef("pk"), started_at__gte=since)
    if signature.tool:
        # The redundant ``<> ''`` lets the planner prove the partial index step_tool_trace_idx applies.
        steps = steps.filter(tool_name=signature.tool).exclude(tool_name="")
    if signature.action_hash:
        steps = steps.filter(action_hash=signature.action_hash).exclude(action_hash="")
    if signature.args:
        # ``tool_arguments::text`` ILIKE / ~* is what the trigram index step_args_trgm serves.
        steps = steps.annotate(_args_text=step_arguments_text()).filter(tool_arguments__isnull=False)
        if signature.args.startswith(REGEX_PREFIX):
            pattern = signature.args[len(REGEX_PREFIX) :]
            # The regex matches within a bounded prefix of the arguments (linear time already: no
            # back-references); the same test on the whole text lets the index pick the candidates (pg_trgm
            # reads the regex's literals), and it runs only on rows whose prefix matched already.
            scanned = Substr("_args_text", 1, settings.FIREBREAK_BLAST_REGEX_SCAN_CHARS)
            steps = steps.annotate(_args_head=scanned).filter(_args_head__iregex=pattern, _args_text__iregex=pattern)
        else:
            steps = steps.filter(IContains("_args_text", signature.args))
    return steps


def blast_traces(*, signature: BlastSignature, since: datetime, until: datetime) -> QuerySet[Trace]:
    """The matching trajectories (unordered, unevaluated)."""
    qs = Trace.objects.filter(started_at__gte=since, started_at__lt=until)
    if signature.agents:
        qs = qs.filter(agent__slug__in=signature.agents)
    if signature.model_version:
        qs = qs.filter(model_version=signature.model_version)
    if signature.prompt_version:
        qs = qs.filter(prompt_version=signature.prompt_version)
    if signature.input_class:
        qs = qs.filter(input_class=signature.input_class)
    if signature.has_step_criteria:
        qs = qs.filter(Exists(_matching_steps(signature, since)))
    return qs.order_by()


def blast_users(
    *, signature: BlastSignature, since: datetime, until: datetime, limit: int | None = None
) -> QuerySet[Trace, BlastUser]:
    """Per affected user: trajectories, first_seen, last_seen, still_running; by user id."""
    qs = (
        blast_traces(signature=signature, since=since, until=until)
        .exclude(user_id="")
        .values("user_id")
        .annotate(
            trajectories=Count("id"),
            first_seen=Min("started_at"),
            last_seen=Max("started_at"),
            still_running=Count("id", filter=Q(status=TraceStatus.RUNNING)),
        )
        .order_by("user_id")
    )
    return qs[:limit] if limit is not None else qs


@contextmanager
def _matched(traces: QuerySet[Trace]) -> Iterator[QuerySet[Trace]]:
    """The matching trajectories computed once, into a temporary table, for the several counts and lists a blast
    radius reads: the step criteria (a semi-join over the steps, the costly part) run once, not once per read.
    Yields the traces whose id is in it; the table is dropped on leaving (and with the transaction)."""
    table = f"blast_matched_{uuid.uuid4().hex[:12]}"
    sql, params = traces.values("id").query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} ON COMMIT DROP AS {sql}", params)
        cursor.execute(f"ANALYZE {table}")  # the planner then knows how many matched
        try:
            yield Trace.objects.filter(id__in=RawSQL(f"SELECT id FROM {table}", ())).order_by()  # noqa: S611 - our name
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def blast_radius(
    *,
    signature: BlastSignature,
    since: datetime,
    until: datetime,
    limit_users: int = TIMELINE_USER_LIMIT,
    limit_traces: int = TRACE_LIMIT,
) -> BlastResult:
    """Count what the signature touched in [since, until): the matching trajectories found once, then four
    queries over them, none looping over rows.

    A run counts as still running while it is marked running and sent a span in the last
    ``FIREBREAK_RUN_QUIET_MINUTES``; one that stopped sending without ending is counted as quiet, not as
    containment failing.
    """
    with _matched(blast_traces(signature=signature, since=since, until=until)) as traces:
        heard = timezone.now() - timedelta(minutes=settings.FIREBREAK_RUN_QUIET_MINUTES)
        live = Q(status=TraceStatus.RUNNING, updated_at__gte=heard)
        totals = traces.aggregate(
            trajectories=Count("id"),
            distinct_users=Count("user_id", distinct=True, filter=~Q(user_id="")),
            still_running=Count("id", filter=live),
            quiet=Count("id", filter=Q(status=TraceStatus.RUNNING, updated_at__lt=heard)),
        )
        user_ids = list(
            traces.exclude(user_id="").values_list("user_id", flat=True).distinct().order_by("user_id")[:limit_users]
        )
        recent = list(traces.select_related("agent").order_by("-started_at", "-id")[:limit_traces])
        running_agents: list[RunningAgent] = []
        if totals["still_running"]:
            running_agents = [
                {
                    "slug": row["agent__slug"],
                    "name": row["agent__name"],
                    "state": row["agent__state"],
                    "running": row["n"],
                    "sessions": [],
                }
                for row in traces.filter(live)
                .values("agent__slug", "agent__name", "agent__state")
                .annotate(n=Count("id"))
                .order_by("agent__slug")
            ]
            for running_agent in running_agents:
                running_agent["sessions"] = list(
                    traces.filter(live, agent__slug=running_agent["slug"])
                    .exclude(session_id="")
                    .values_list("session_id", flat=True)
                    .distinct()
                    .order_by("session_id")[:RUNNING_SESSIONS_MAX]
                )
    return BlastResult(
        signature=signature,
        since=since,
        until=until,
        trajectories=totals["trajectories"],
        distinct_users=totals["distinct_users"],
        still_running=totals["still_running"],
        quiet=totals["quiet"],
        user_ids=user_ids,
        traces=recent,
        running_agents=running_agents,
    )


def blast_radius_last(*, incident: Incident) -> BlastLast | None:
    """The latest blast-radius timeline entry: ``{"entry", "trajectories", "users", "running", "data"}``.

    The counts are those :meth:`BlastResult.as_data` records.
    """
    entry = (
        TimelineEntry.objects.filter(incident=incident, kind=TimelineKind.BLAST_RADIUS)
        .order_by("-created_at", "-id")
        .first()
    )
    if entry is None:
        return None
    data: dict[str, Any] = entry.data if isinstance(entry.data, dict) else {}
    return {
        "entry": entry,
        "trajectories": data.get("trajectories"),
        "users": data.get("users"),
        "running": data.get("still_running"),
        "data": data,
    }
