"""Reads of one session's and one user's runs: the pages /traces/sessions/<id>/ and /traces/users/<id>/.

Both walk an index (trace_session_idx, trace_user_idx): a page of runs at a time, and totals that are
one aggregate over the same index.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Q, QuerySet, Sum

from traces.models import Trace, TraceStatus
from traces.selectors.cursor import Cursor

PAGE = 100


@dataclass(frozen=True)
class RunTotals:
    runs: int
    cost: Decimal
    tokens_in: int
    tokens_out: int
    steps: int
    errors: int  # runs that ended in error or were killed
    agents: list[str]
    sessions: int
    first_at: datetime | None
    last_at: datetime | None


@dataclass(frozen=True)
class RunPage:
    traces: list[Trace]
    next_cursor: str | None
    totals: RunTotals


def _totals(qs: QuerySet[Trace]) -> RunTotals:
    agg = qs.aggregate(
        runs=Count("id"),
        cost=Sum("cost"),
        tokens_in=Sum("tokens_in"),
        tokens_out=Sum("tokens_out"),
        steps=Sum("step_count"),
        errors=Count("id", filter=Q(status__in=[TraceStatus.ERROR, TraceStatus.KILLED])),
        sessions=Count("session_id", distinct=True, filter=~Q(session_id="")),
        first_at=Min("started_at"),
        last_at=Max("started_at"),
    )
    agents = sorted(set(qs.values_list("agent__slug", flat=True).distinct()))
    return RunTotals(
        runs=agg["runs"],
        cost=agg["cost"] or Decimal(0),
        tokens_in=agg["tokens_in"] or 0,
        tokens_out=agg["tokens_out"] or 0,
        steps=agg["steps"] or 0,
        errors=agg["errors"],
        agents=agents,
        sessions=agg["sessions"],
        first_at=agg["first_at"],
        last_at=agg["last_at"],
    )


def _keyset_page(
    qs: QuerySet[Trace], cursor: Cursor | None, limit: int, *, newest_first: bool
) -> tuple[list[Trace], str | None]:
    """One page of ``qs`` by (started_at, id), oldest or newest first, and the cursor of the next (None: last)."""
    if cursor:
        if newest_first:
            after = Q(started_at__lt=cursor.started_at) | Q(id__lt=cursor.id)
            qs = qs.filter(Q(started_at__lte=cursor.started_at) & after)
        else:
            after = Q(started_at__gt=cursor.started_at) | Q(id__gt=cursor.id)
            qs = qs.filter(Q(started_at__gte=cursor.started_at) & after)
    order = ("-started_at", "-id") if newest_first else ("started_at", "id")
    rows = list(qs.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, Cursor(started_at=rows[-1].started_at, id=rows[-1].pk).encode() if more else None


def session_runs(*, session_id: str, cursor: Cursor | None = None, limit: int = PAGE) -> RunPage:
    """A session's runs in time order (oldest first, as the conversation went), ``limit`` at a time, with
    the totals of the whole session. An unknown session is an empty page, not an error."""
    base = Trace.objects.filter(session_id=session_id)
    rows, next_cursor = _keyset_page(base.select_related("agent"), cursor, limit, newest_first=False)
    return RunPage(traces=rows, next_cursor=next_cursor, totals=_totals(base))


def user_runs(*, user_id: str, cursor: Cursor | None = None, limit: int = PAGE) -> RunPage:
    """A user's runs across sessions and agents, newest first, ``limit`` at a time, with the totals of
    all of them. An unknown user is an empty page, not an error."""
    base = Trace.objects.filter(user_id=user_id)
    rows, next_cursor = _keyset_page(base.select_related("agent"), cursor, limit, newest_first=True)
    return RunPage(traces=rows, next_cursor=next_cursor, totals=_totals(base))
