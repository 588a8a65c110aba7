"""Reads for traces: the trace list with filters and keyset pages, one trajectory, fleet activity.

Built to stay fast at millions of traces: no COUNT(*) over the table, pages
walk the (-started_at, -id) index from a cursor, and step content is cut in
the database before it reaches Python.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from difflib import SequenceMatcher

from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, Q, Sum, TextField
from django.db.models.functions import Cast, Left, Length

from agents.models import Agent
from traces.models import Step, Trace, TraceStatus

STEP_TEXT_LIMIT = 2000


@dataclass(frozen=True)
class Cursor:
    """Position after the last trace of a page: its start time and id."""

    started_at: datetime
    id: int

    def encode(self) -> str:
        micros = int(self.started_at.timestamp() * 1_000_000)
        return f"{micros}_{self.id}"

    @classmethod
    def decode(cls, raw: str) -> "Cursor | None":
        """The cursor in ``raw``, or None when it is not one (the caller starts from the top)."""
        try:
            micros, pk = raw.split("_", 1)
            started_at = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
            return cls(started_at=started_at, id=int(pk))
        except (ValueError, OverflowError, OSError):
            return None


@dataclass(frozen=True)
class TracePage:
    traces: list[Trace]
    next_cursor: str | None


def trace_list(
    *,
    agent: str = "",
    status: str = "",
    user_id: str = "",
    model_version: str = "",
    prompt_version: str = "",
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
    if model_version:
        qs = qs.filter(model_version=model_version)
    if prompt_version:
        qs = qs.filter(prompt_version=prompt_version)
    if tool:
        qs = qs.filter(Exists(Step.objects.filter(trace=OuterRef("pk"), tool_name=tool)))
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


def trace_get(*, trace_id: str) -> Trace:
    """The trace with this id; raises Trace.DoesNotExist."""
    return Trace.objects.select_related("agent").get(trace_id=trace_id)


def agent_activity(*, since: datetime) -> dict[int, dict]:
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
    return {row.pop("agent_id"): row for row in rows}


def trace_exists() -> bool:
    return Trace.objects.exists()


def session_spend_p50(agent, *, days: int = 7) -> Decimal | None:
    """Median cost of the agent's finished runs over the last ``days`` (None without runs)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY cost)::numeric, 6) FROM traces_trace "
            "WHERE agent_id = %s AND status <> 'running' AND started_at >= now() - make_interval(days => %s)",
            [agent.pk, days],
        )
        (value,) = cur.fetchone()
    return Decimal(str(value)) if value is not None else None


# --- the trajectory viewer ---------------------------------------------------------------------------
# A trace can hold 10,000 steps. The viewer never loads them all: one light
# query reads (span id, parent, action hash) of every step in order — the
# "skeleton" that gives each step its position, depth, children and loop
# counts — and the content is read for one page of steps at a time, with long
# text cut in the database.

FIRST_SCREEN_STEPS = 150
STEP_PAGE_STEPS = 200
SEARCH_LIMIT = 200
RECENT_TOOL_CALLS = 5
DIFF_MAX_CALLS = 2000
SLOW_STEP_SHARE = 0.1  # of the whole run
SLOW_STEP_MIN_MS = 100
_MAX_DEPTH = 64


@dataclass
class Skeleton:
    """Per-step facts that need the whole trace, keyed by span id."""

    positions: dict[str, int]  # 1-based position in (started_at, id) order
    depths: dict[str, int]  # 0 for roots and orphans
    child_counts: dict[str, int]
    hash_counts: dict[str, int]  # action hash -> tool calls with it in the trace
    runs: dict[str, int]  # span id -> place in a run of identical consecutive tool calls (2, 3, …)
    recent_tools: dict[str, int]  # the last RECENT_TOOL_CALLS tool calls: 1 = the last one
    total: int


def step_skeleton(*, trace: Trace) -> Skeleton:
    """The skeleton of every step of ``trace`` from one narrow query (three short columns per step)."""
    # Plain SQL: at 10,000 rows the ORM's per-row work costs more than the query.
    with connection.cursor() as cur:
        cur.execute(
            "SELECT span_id, parent_span_id, action_hash FROM traces_step WHERE trace_id = %s ORDER BY started_at, id",
            [trace.pk],
        )
        rows = cur.fetchall()
    positions: dict[str, int] = {}
    parents: dict[str, str] = {}
    hash_counts: dict[str, int] = {}
    runs: dict[str, int] = {}
    tool_spans: list[str] = []
    prev_hash, run = "", 0
    for i, (span_id, parent, ahash) in enumerate(rows, start=1):
        positions[span_id] = i
        parents[span_id] = parent
        if ahash:
            hash_counts[ahash] = hash_counts.get(ahash, 0) + 1
            run = run + 1 if ahash == prev_hash else 1
            if run > 1:
                runs[span_id] = run
            prev_hash = ahash
            tool_spans.append(span_id)
    depths: dict[str, int] = {}
    child_counts: dict[str, int] = {}
    for span_id, parent in parents.items():
        if parent in parents:
            child_counts[parent] = child_counts.get(parent, 0) + 1
        if parent in depths:  # the usual case: a parent starts before its children
            depths[span_id] = min(depths[parent] + 1, _MAX_DEPTH)
        elif parent not in parents:  # a root, or a parent that never arrived
            depths[span_id] = 0
        else:
            depths[span_id] = _depth_walk(span_id, parents, depths)
    recent = {span_id: n for n, span_id in enumerate(reversed(tool_spans[-RECENT_TOOL_CALLS:]), start=1)}
    return Skeleton(
        positions=positions,
        depths=depths,
        child_counts=child_counts,
        hash_counts=hash_counts,
        runs=runs,
        recent_tools=recent,
        total=len(rows),
    )


def _depth_walk(span_id: str, parents: dict[str, str], depths: dict[str, int]) -> int:
    """Depth of a step whose parent has not been placed yet (it started later, or there is a cycle)."""
    chain, node = [], span_id
    while node not in depths:
        chain.append(node)
        up = parents.get(node, "")
        if not up or up not in parents or up in chain or len(chain) > _MAX_DEPTH:
            depths[node] = 0
            chain.pop()
            break
        node = up
    base = depths[node]
    for offset, n in enumerate(reversed(chain), start=1):
        depths[n] = min(base + offset, _MAX_DEPTH)
    return depths[span_id]


def _step_rows(trace: Trace):
    return Step.objects.filter(trace=trace)


def _with_content(ids: list[int]) -> list[Step]:
    """The steps ``ids`` in order, long text cut in the database.

    Pages are chosen first by id over the (trace, started_at, id) index, and only then is text
    read and cut for those few rows: cutting text in the same query as the ordering lets the
    planner compute it for every step of the trace before it sorts.
    """
    if not ids:
        return []
    return list(
        Step.objects.filter(pk__in=ids)
        .defer("input", "output", "attributes")
        .annotate(
            output_head=Left("output", STEP_TEXT_LIMIT),
            output_len=Length("output"),
            input_len=Length("input"),
        )
        .order_by("started_at", "id")
    )


def _page_ids(qs, order: tuple[str, ...], limit: int) -> tuple[list[int], bool]:
    ids = list(qs.order_by(*order).values_list("id", flat=True)[: limit + 1])
    return ids[:limit], len(ids) > limit


def _before(cursor: Cursor) -> Q:
    return Q(started_at__lte=cursor.started_at) & (Q(started_at__lt=cursor.started_at) | Q(id__lt=cursor.id))


def _after(cursor: Cursor) -> Q:
    return Q(started_at__gte=cursor.started_at) & (Q(started_at__gt=cursor.started_at) | Q(id__gt=cursor.id))


def step_cursor(step: Step) -> str:
    return Cursor(started_at=step.started_at, id=step.pk).encode()


@dataclass
class StepWindow:
    """A run of consecutive steps and whether more steps lie before or after it."""

    steps: list[Step]
    more_before: bool
    more_after: bool

    @property
    def first_cursor(self) -> str | None:
        return step_cursor(self.steps[0]) if self.steps else None

    @property
    def last_cursor(self) -> str | None:
        return step_cursor(self.steps[-1]) if self.steps else None


def step_window_last(*, trace: Trace, limit: int = FIRST_SCREEN_STEPS) -> StepWindow:
    """The last ``limit`` steps, in order: the viewer opens at the end."""
    ids, more = _page_ids(_step_rows(trace), ("-started_at", "-id"), limit)
    return StepWindow(steps=_with_content(ids), more_before=more, more_after=False)


def step_window_before(*, trace: Trace, cursor: Cursor, limit: int = STEP_PAGE_STEPS) -> StepWindow:
    """The ``limit`` steps just before ``cursor``, in order."""
    ids, more = _page_ids(_step_rows(trace).filter(_before(cursor)), ("-started_at", "-id"), limit)
    return StepWindow(steps=_with_content(ids), more_before=more, more_after=True)


def step_window_after(*, trace: Trace, cursor: Cursor | None, limit: int = STEP_PAGE_STEPS) -> StepWindow:
    """The ``limit`` steps just after ``cursor`` (from the first step without one), in order.

    This is also what a running trace polls for.
    """
    qs = _step_rows(trace)
    if cursor is not None:
        qs = qs.filter(_after(cursor))
    ids, more = _page_ids(qs, ("started_at", "id"), limit)
    return StepWindow(steps=_with_content(ids), more_before=cursor is not None, more_after=more)


def step_window_around(*, trace: Trace, span_id: str, limit: int = STEP_PAGE_STEPS) -> StepWindow | None:
    """About ``limit`` steps centred on the step ``span_id``; None when the trace has no such step."""
    anchor = Step.objects.filter(trace=trace, span_id=span_id).only("id", "started_at").first()
    if anchor is None:
        return None
    cursor = Cursor(started_at=anchor.started_at, id=anchor.pk)
    half = limit // 2
    before, more_before = _page_ids(_step_rows(trace).filter(_before(cursor)), ("-started_at", "-id"), half)
    rest, more_after = _page_ids(_step_rows(trace).filter(Q(pk=anchor.pk) | _after(cursor)), ("started_at", "id"), half)
    return StepWindow(steps=_with_content(before + rest), more_before=more_before, more_after=more_after)


def step_search(*, trace: Trace, query: str, limit: int = SEARCH_LIMIT) -> StepWindow:
    """Steps whose name, tool name, arguments, output or error contain ``query`` (case-insensitive), in order.

    ``more_after`` says more than ``limit`` steps matched.
    """
    matches = (
        _step_rows(trace)
        .annotate(args_search=Cast("tool_arguments", TextField()))
        .filter(
            Q(name__icontains=query)
            | Q(tool_name__icontains=query)
            | Q(args_search__icontains=query)
            | Q(output__icontains=query)
            | Q(error_message__icontains=query)
        )
    )
    ids, more = _page_ids(matches, ("started_at", "id"), limit)
    return StepWindow(steps=_with_content(ids), more_before=False, more_after=more)


def trace_time_bounds(*, trace: Trace) -> tuple[datetime, float]:
    """Start of the trace and its length in ms, for timing bars (a running trace ends at its latest step)."""
    end = trace.ended_at
    if end is None:
        end = Step.objects.filter(trace=trace).aggregate(end=Max("ended_at"))["end"]
    total = (end - trace.started_at).total_seconds() * 1000 if end else 0.0
    return trace.started_at, max(total, 1.0)


def steps_decorate(steps: list[Step], *, skeleton: Skeleton, start: datetime, total_ms: float) -> list[Step]:
    """Give each step what the viewer shows next to it: position, depth, loop counts, timing bar, text cut.

    Attributes set: ``position``, ``depth``, ``children``, ``repeat_count`` (tool calls with this
    action hash in the trace), ``repeat_run`` (its place in a run of identical consecutive calls, 0 if
    none), ``recent_tool`` (1 to 5 for the last five tool calls, else 0), ``offset_ms`` (from the
    trace's start), ``bar_left``/``bar_width`` (percent of the trace's duration), ``share`` (fraction
    of the trace's duration), ``slow`` (a leaf step taking at least SLOW_STEP_SHARE of the run),
    ``output_more`` (characters of the output not shown) and ``args_text``
    (the arguments as JSON, one line when short). The input is
    not read here: the viewer loads it when a step's input is opened.
    """
    for step in steps:
        sid = step.span_id
        step.position = skeleton.positions.get(sid, 0)
        step.depth = skeleton.depths.get(sid, 0)
        step.children = skeleton.child_counts.get(sid, 0)
        step.repeat_count = skeleton.hash_counts.get(step.action_hash, 0) if step.action_hash else 0
        step.repeat_run = skeleton.runs.get(sid, 0)
        step.recent_tool = skeleton.recent_tools.get(sid, 0)
        offset = (step.started_at - start).total_seconds() * 1000
        step.offset_ms = offset
        length = (step.ended_at - step.started_at).total_seconds() * 1000 if step.ended_at else 0.0
        left = min(max(offset / total_ms * 100, 0.0), 100.0)
        step.share = max(length, 0.0) / total_ms
        # A parent spans its children, and sub-100 ms steps are never the slow part of a run.
        step.slow = not step.children and length >= SLOW_STEP_MIN_MS and step.share >= SLOW_STEP_SHARE
        step.bar_left = f"{left:.2f}"
        step.bar_width = f"{min(max(step.share * 100, 0.4), 100.0 - left):.2f}"
        step.output_more = max(0, (step.output_len or 0) - STEP_TEXT_LIMIT)
        step.args_text = _args_text(step.tool_arguments) if step.tool_arguments is not None else ""
    return steps


_ARGS_ONE_LINE = 100


def _args_text(arguments) -> str:
    """Tool arguments as JSON text: on one line when short, indented otherwise; cut at STEP_TEXT_LIMIT."""
    compact = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    text = (
        compact
        if len(compact) <= _ARGS_ONE_LINE
        else json.dumps(arguments, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    )
    if len(text) > STEP_TEXT_LIMIT:
        text = f"{text[:STEP_TEXT_LIMIT]}\n… [{len(text) - STEP_TEXT_LIMIT:,} more characters not shown]"
    return text


def step_get(*, trace: Trace, span_id: str) -> Step:
    """One step of ``trace`` with its full text; raises Step.DoesNotExist."""
    return Step.objects.get(trace=trace, span_id=span_id)


def trace_golden_get(*, trace: Trace) -> Trace | None:
    """The golden trace of ``trace``'s agent and input class (possibly ``trace`` itself); None without one."""
    if not trace.input_class:
        return None
    return (
        Trace.objects.select_related("agent")
        .filter(agent_id=trace.agent_id, input_class=trace.input_class, is_golden=True)
        .order_by("-started_at", "-id")
        .first()
    )


@dataclass
class DiffCall:
    position: int
    span_id: str
    tool_name: str
    arguments: object
    status: str

    @property
    def args_text(self) -> str:
        return _args_text(self.arguments) if self.arguments is not None else ""


@dataclass
class DiffRow:
    """One line of the side-by-side diff: ``kind`` is same, changed, missing, inserted or replaced."""

    kind: str
    golden: DiffCall | None
    this: DiffCall | None
    changed_keys: list[str]


@dataclass
class TrajectoryDiff:
    rows: list[DiffRow]
    counts: dict[str, int]
    golden_calls: int
    this_calls: int
    truncated: bool


def _tool_calls(trace: Trace) -> tuple[list[DiffCall], bool]:
    positions = {
        sid: i
        for i, sid in enumerate(
            Step.objects.filter(trace=trace).order_by("started_at", "id").values_list("span_id", flat=True), start=1
        )
    }
    rows = list(
        Step.objects.filter(trace=trace)
        .exclude(tool_name="")
        .order_by("started_at", "id")
        .values_list("span_id", "tool_name", "tool_arguments", "status")[: DIFF_MAX_CALLS + 1]
    )
    calls = [DiffCall(positions.get(r[0], 0), *r) for r in rows[:DIFF_MAX_CALLS]]
    return calls, len(rows) > DIFF_MAX_CALLS


def _changed_keys(a, b) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return sorted(k for k in set(a) | set(b) if _canonical(a.get(k, _MISSING)) != _canonical(b.get(k, _MISSING)))
    return ["(arguments)"]


_MISSING = object()


def _canonical(value) -> str:
    if value is _MISSING:
        return "\x00missing"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def trajectory_diff(*, trace: Trace, golden: Trace) -> TrajectoryDiff:
    """The tool-call sequence of ``trace`` aligned against ``golden``'s.

    Calls are aligned by tool name (difflib.SequenceMatcher, no junk heuristic: in an agent's
    trajectory the common tools are the signal), then aligned calls are compared by canonical
    arguments. Each sequence is cut at DIFF_MAX_CALLS calls (``truncated``).
    """
    left, cut_left = _tool_calls(golden)
    right, cut_right = _tool_calls(trace)
    matcher = SequenceMatcher(None, [c.tool_name for c in left], [c.tool_name for c in right], autojunk=False)
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for g, t in zip(left[i1:i2], right[j1:j2], strict=True):
                if _canonical(g.arguments) == _canonical(t.arguments):
                    rows.append(DiffRow("same", g, t, []))
                else:
                    rows.append(DiffRow("changed", g, t, _changed_keys(g.arguments, t.arguments)))
        elif tag == "delete":
            rows.extend(DiffRow("missing", g, None, []) for g in left[i1:i2])
        elif tag == "insert":
            rows.extend(DiffRow("inserted", None, t, []) for t in right[j1:j2])
        else:  # replace: a different tool where the golden run called another
            gs, ts = left[i1:i2], right[j1:j2]
            for k in range(max(len(gs), len(ts))):
                g = gs[k] if k < len(gs) else None
                t = ts[k] if k < len(ts) else None
                kind = "replaced" if g and t else ("missing" if g else "inserted")
                rows.append(DiffRow(kind, g, t, []))
    counts = {k: 0 for k in ("same", "changed", "missing", "inserted", "replaced")}
    for row in rows:
        counts[row.kind] += 1
    return TrajectoryDiff(
        rows=rows,
        counts=counts,
        golden_calls=len(left),
        this_calls=len(right),
        truncated=cut_left or cut_right,
    )
