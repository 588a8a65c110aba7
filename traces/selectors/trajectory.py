"""One run's steps for the trajectory viewer: the skeleton, windows of steps, search, one step's full text.

A trace can hold 10,000 steps. The viewer never loads them all: one light
query reads (span id, parent, action hash) of every step in order — the
"skeleton" that gives each step its position, depth, children and loop
counts — and the content is read for one page of steps at a time, with long
text cut in the database.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.db import connection
from django.db.models import Max, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Left, Length

from core.db import IContains
from traces.ingest.payloads import APART_KEY
from traces.models import SEARCH_FIELD_SEPARATOR, Step, StepSearchText, Trace
from traces.selectors.cursor import Cursor

STEP_TEXT_LIMIT = 2000  # characters of a step's output read per step; the rest on demand (step_get)
FIRST_SCREEN_STEPS = 150
STEP_PAGE_STEPS = 200
SEARCH_LIMIT = 200
RECENT_TOOL_CALLS = 5
_MAX_DEPTH = 64
_SKELETON_SEPARATOR = "\x1f"


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


def _skeleton_columns(trace: Trace) -> tuple[list[str], list[str], list[str]]:
    """Span ids, parent span ids and action hashes of every step of ``trace``, in (started_at, id) order."""
    # Each column comes back as one string, split in Python: at 100,000 steps, building a row tuple per step
    # cost more than the query. Ingest stores hex ids and hashes, so the unit separator cannot occur in them
    # (if it ever does, the rows are read one by one). No step starts before its trace: the bound leaves the
    # older day partitions out.
    bound: tuple[int, datetime] = (trace.pk, trace.started_at)
    order = "ORDER BY started_at, id"
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT count(*), string_agg(span_id, E'\\x1f' {order}), string_agg(parent_span_id, E'\\x1f' {order}), "
            f"string_agg(action_hash, E'\\x1f' {order}) FROM traces_step WHERE trace_id = %s AND started_at >= %s",
            bound,
        )
        total, *texts = cur.fetchone()
        if not total:
            return [], [], []
        spans, parents, hashes = (text.split(_SKELETON_SEPARATOR) for text in texts)
        if len(spans) == len(parents) == len(hashes) == total:
            return spans, parents, hashes
        cur.execute(
            f"SELECT span_id, parent_span_id, action_hash FROM traces_step WHERE trace_id = %s AND started_at >= %s "
            f"{order}",
            bound,
        )
        rows = cur.fetchall()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def step_skeleton(*, trace: Trace) -> Skeleton:
    """The skeleton of every step of ``trace`` from one narrow query (three short columns per step)."""
    spans, parent_ids, hashes = _skeleton_columns(trace)
    total = len(spans)
    # Whole-column passes (comprehensions, Counter, zip) rather than one Python loop doing everything per step.
    positions = dict(zip(spans, range(1, total + 1), strict=True))
    parents = dict(zip(spans, parent_ids, strict=True))
    hashed = [(span_id, ahash) for span_id, ahash in zip(spans, hashes, strict=True) if ahash]
    hash_counts = dict(Counter(ahash for _, ahash in hashed))
    runs: dict[str, int] = {}
    prev_hash, run = "", 0
    for span_id, ahash in hashed:
        run = run + 1 if ahash == prev_hash else 1
        if run > 1:
            runs[span_id] = run
        prev_hash = ahash
    child_counts = dict(Counter(parent for parent in parents.values() if parent in parents))
    depths: dict[str, int] = {}
    for span_id, parent in parents.items():
        if parent in depths:  # the usual case: a parent starts before its children
            depths[span_id] = min(depths[parent] + 1, _MAX_DEPTH)
        elif parent not in parents:  # a root, or a parent that never arrived
            depths[span_id] = 0
        else:
            depths[span_id] = _depth_walk(span_id, parents, depths)
    recent = {span_id: n for n, (span_id, _) in enumerate(reversed(hashed[-RECENT_TOOL_CALLS:]), start=1)}
    return Skeleton(
        positions=positions,
        depths=depths,
        child_counts=child_counts,
        hash_counts=hash_counts,
        runs=runs,
        recent_tools=recent,
        total=total,
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


def _step_rows(trace: Trace) -> QuerySet[Step]:
    """The steps of ``trace``: bounded by its start (no step starts before it), which leaves the older day
    partitions of the steps table out of the plan."""
    return Step.objects.filter(trace=trace, started_at__gte=trace.started_at)


class StepContent(TypedDict):
    """What the steps of a window carry beside their columns (``input``, ``output`` and ``attributes`` are
    deferred): the output's first STEP_TEXT_LIMIT characters, the lengths of output and input, and the stop's name
    when the gate refused the call (the ``firebreak.refused`` attribute of a refusal span), and which values
    are stored apart from the row with their size in bytes (``firebreak.apart``; the row holds a preview)."""

    output_head: str
    output_len: int
    input_len: int
    refused: str | None
    apart: object  # {field: bytes} as the sender's attributes hold it: read it with presentation's apart_sizes


def _with_content(ids: list[int]) -> list[Step]:
    """The steps ``ids`` in order, long text cut in the database (annotated with StepContent's fields).

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
            refused=KeyTextTransform("firebreak.refused", "attributes"),  # a call the gate refused (its stop)
            apart=KeyTransform(APART_KEY, "attributes"),  # values stored apart: {field: size in bytes}
        )
        .order_by("started_at", "id")
    )


def _page_ids(qs: QuerySet[Step], order: tuple[str, ...], limit: int) -> tuple[list[int], bool]:
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
    anchor = _step_rows(trace).filter(span_id=span_id).only("id", "started_at").first()
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
    # One ILIKE over the fields joined, not one per field.
    text = query.replace(SEARCH_FIELD_SEPARATOR, "")
    matches = _step_rows(trace).filter(IContains(StepSearchText(), text))
    ids, more = _page_ids(matches, ("started_at", "id"), limit)
    return StepWindow(steps=_with_content(ids), more_before=False, more_after=more)


def trace_time_bounds(*, trace: Trace) -> tuple[datetime, float]:
    """Start of the trace and its length in ms, for timing bars (a running trace ends at its latest step)."""
    end = trace.ended_at
    if end is None:
        end = _step_rows(trace).aggregate(end=Max("ended_at"))["end"]
    total = (end - trace.started_at).total_seconds() * 1000 if end else 0.0
    return trace.started_at, max(total, 1.0)


def step_get(*, trace: Trace, span_id: str) -> Step:
    """One step of ``trace`` with its full text; raises Step.DoesNotExist."""
    return _step_rows(trace).get(span_id=span_id)
