"""Reads of whole runs (Trace rows): the trace list with filters and keyset pages, lookups, fleet activity.

Built to stay fast at millions of traces: no COUNT(*) over the table, and pages
walk the (-started_at, -id) index from a cursor.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from agents.models import Agent
from traces.models import Step, Trace, TraceStatus
from traces.selectors.cursor import Cursor


@dataclass(frozen=True)
class TracePage:
    traces: list[Trace]
    next_cursor: str | None


def trace_list(
    *,
    agent: str = "",
    status: str = "",
    user_id: str = "",
    session_id: str = "",
    model_version: str = "",
    prompt_version: str = "",
    input_class: str = "",
    tool: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    flagged: bool | None = None,
    cursor: Cursor | None = None,
    limit: int = 50,
) -> TracePage:
    """Traces matching every given filter, newest first, ``limit`` at a time.

    ``agent`` is a slug, ``tool`` a tool name some step of the trace called,
    ``since``/``until`` bound the start time. ``next_cursor`` is set only when
    at least one more trace follows (one extra row is read to know).
    """
    qs = Trace.objects.select_related("agent")
    if agent:
        qs = qs.filter(agent__slug=agent)
    if status:
        qs = qs.filter(status=status)
    if user_id:
        qs = qs.filter(user_id=user_id)
    if session_id:
        qs = qs.filter(session_id=session_id)
    if model_version:
        qs = qs.filter(model_version=model_version)
    if prompt_version:
        qs = qs.filter(prompt_version=prompt_version)
    if input_class:
        qs = qs.filter(input_class=input_class)
    if tool:
        # The redundant ``<> ''`` lets the planner prove the partial index step_tool_trace_idx applies.
        qs = qs.filter(Exists(Step.objects.filter(trace=OuterRef("pk"), tool_name=tool).exclude(tool_name="")))
    if since:
        qs = qs.filter(started_at__gte=since)
    if until:
        qs = qs.filter(started_at__lt=until)
    if flagged is True:
        qs = qs.exclude(flagged_span_id="")
    elif flagged is False:
        qs = qs.filter(flagged_span_id="")
    if cursor:
        # started_at <= c bounds the index scan; the OR only breaks ties.
        qs = qs.filter(
            Q(started_at__lte=cursor.started_at) & (Q(started_at__lt=cursor.started_at) | Q(id__lt=cursor.id))
        )
    rows = list(qs.order_by("-started_at", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = Cursor(started_at=rows[-1].started_at, id=rows[-1].pk).encode() if more else None
    return TracePage(traces=rows, next_cursor=next_cursor)


def trace_recent_list(*, agent: Agent | None = None, limit: int = 10) -> list[Trace]:
    qs = Trace.objects.select_related("agent")
    if agent is not None:
        qs = qs.filter(agent=agent)
    return list(qs.order_by("-started_at", "-id")[:limit])


def _trajectories_of(trace_id: str) -> QuerySet[Trace]:
    """Every agent's trajectory of one trace id, the default one first.

    The default (what ``/traces/<trace_id>/`` opens without ``?agent=``) is the trajectory that holds a
    root step (a span without a parent: in a multi-agent run, the orchestrator's; sub-agents' roots have
    a parent in another agent's trajectory), then the one that started first, then the one stored first.
    """
    has_root = Exists(Step.objects.filter(trace_id=OuterRef("pk"), parent_span_id=""))
    return (
        Trace.objects.select_related("agent")
        .filter(trace_id=trace_id)
        .annotate(has_root=has_root)
        .order_by("-has_root", "started_at", "id")
    )


def trace_get(*, trace_id: str, agent: str = "") -> Trace:
    """One agent's trajectory of ``trace_id``: the agent with slug ``agent``, or when it is empty the
    default trajectory (see ``_trajectories_of``). Raises Trace.DoesNotExist."""
    if agent:
        return Trace.objects.select_related("agent").get(trace_id=trace_id, agent__slug=agent)
    trace = _trajectories_of(trace_id).first()
    if trace is None:
        raise Trace.DoesNotExist(f"no trace {trace_id!r}")
    return trace


def trace_ref(trace: Trace) -> str:
    """How a person names one trajectory in a list of trace ids: the bare trace id while it is the only
    trajectory of that id, ``<trace_id>@<agent slug>`` when other agents share the id."""
    if Trace.objects.filter(trace_id=trace.trace_id).exclude(pk=trace.pk).exists():
        return f"{trace.trace_id}@{trace.agent.slug}"
    return trace.trace_id


def trace_get_by_ref(*, ref: str) -> Trace:
    """The trajectory ``<trace_id>@<agent slug>`` names, or for a bare ``<trace_id>`` the default one
    (as ``trace_get`` without an agent). Raises Trace.DoesNotExist."""
    trace_id, _, agent = ref.strip().partition("@")
    return trace_get(trace_id=trace_id.strip().lower()[:32], agent=agent.strip()[:63])


def trace_linked_list(*, trace: Trace) -> list[Trace]:
    """The other agents' trajectories that share ``trace``'s trace id (a multi-agent run), default first."""
    return list(_trajectories_of(trace.trace_id).exclude(pk=trace.pk))


def agent_activity(*, since: datetime) -> dict[int, dict[str, Any]]:
    """Per agent id, for traces started at or after ``since``: spend, trace count, errored and running traces."""
    rows = (
        Trace.objects.filter(started_at__gte=since)
        .values("agent_id")
        .annotate(
            spend=Sum("cost"),
            traces=Count("id"),
            errors=Count("id", filter=Q(status=TraceStatus.ERROR)),
            killed=Count("id", filter=Q(status=TraceStatus.KILLED)),
            running=Count("id", filter=Q(status=TraceStatus.RUNNING)),
            tokens=Sum("tokens_in") + Sum("tokens_out"),
        )
    )
    return {row["agent_id"]: {k: v for k, v in row.items() if k != "agent_id"} for row in rows}


def trace_exists() -> bool:
    return Trace.objects.exists()


def session_spend_p50(agent: Agent, *, days: int = 7) -> Decimal | None:
    """Median cost of the agent's finished runs over the last ``days`` (None without runs)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY cost)::numeric, 6) FROM traces_trace "
            "WHERE agent_id = %s AND status <> 'running' AND started_at >= now() - make_interval(days => %s)",
            [agent.pk, days],
        )
        (value,) = cur.fetchone()
    return Decimal(str(value)) if value is not None else None
