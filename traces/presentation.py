"""What the trajectory pages show beside the data: timing bars, slow steps, cut text, arguments as text.

The views call these on what ``traces.selectors`` read; nothing here touches the database.
"""

import json
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias, TypeVar, cast

from traces.ingest.payloads import apart_sizes
from traces.models import Step
from traces.selectors.golden import DiffCall, DiffRow, TrajectoryDiff
from traces.selectors.trajectory import STEP_TEXT_LIMIT, Skeleton, StepContent

SLOW_STEP_SHARE = 0.1  # of the whole run
SLOW_STEP_MIN_MS = 100


class StepDecorations(StepContent):
    """What :func:`steps_decorate` sets on each step of a window (which already carries StepContent)."""

    position: int
    depth: int
    children: int
    repeat_count: int
    repeat_run: int
    recent_tool: int
    offset_ms: float
    share: float
    slow: bool
    bar_left: str
    bar_width: str
    output_more: int
    output_apart: int
    input_apart: int
    apart_other: list[tuple[str, int]]
    args_text: str
    collapse_count: int
    collapse_head: str


if TYPE_CHECKING:  # django-stubs' type of a model instance that carries attributes beyond its fields
    from django_stubs_ext import WithAnnotations

    DecoratedStep: TypeAlias = WithAnnotations[Step, StepDecorations]


def steps_decorate(steps: list[Step], *, skeleton: Skeleton, start: datetime, total_ms: float) -> "list[DecoratedStep]":
    """Give each step what the viewer shows next to it: position, depth, loop counts, timing bar, text cut.

    Attributes set: ``position``, ``depth``, ``children``, ``repeat_count`` (tool calls with this
    action hash in the trace), ``repeat_run`` (its place in a run of identical consecutive calls, 0 if
    none), ``recent_tool`` (1 to 5 for the last five tool calls, else 0), ``offset_ms`` (from the
    trace's start), ``bar_left``/``bar_width`` (percent of the trace's duration), ``share`` (fraction
    of the trace's duration), ``slow`` (a leaf step taking at least SLOW_STEP_SHARE of the run),
    ``output_more`` (characters of the output not shown), ``output_apart`` / ``input_apart`` (bytes of the
    output / input stored apart, 0 when in the row), ``apart_other`` ((field, bytes) of the arguments and
    attributes stored apart) and ``args_text``
    (the arguments as JSON, one line when short). The input is
    not read here: the viewer loads it when a step's input is opened.
    """
    # The rows of a StepWindow, decorated in place: they become what the cast says in the loop below.
    decorated = cast("list[DecoratedStep]", steps)
    for step in decorated:
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
        sizes = apart_sizes(step.apart)
        step.output_apart = sizes.pop("output", 0)
        step.input_apart = sizes.pop("input", 0)
        step.apart_other = sorted(sizes.items())
        step.output_more = 0 if step.output_apart else max(0, (step.output_len or 0) - STEP_TEXT_LIMIT)
        step.args_text = args_text(step.tool_arguments) if step.tool_arguments is not None else ""
        step.collapse_count, step.collapse_head = 0, ""
    for run in steps_collapse(decorated, key=_viewer_identity):
        if len(run) > 1:
            run[0].collapse_count = len(run)
            for member in run[1:]:
                member.collapse_head = run[0].span_id
    return decorated


T = TypeVar("T")


def steps_collapse(items: Sequence[T], *, key: Callable[[T], Hashable | None]) -> list[list[T]]:
    """Split ``items`` into runs of consecutive items with the same ``key``, in order.

    An item whose key is None never joins a run (a run of one). Every item is in exactly one run,
    so the caller shows a run of N > 1 as one row "xN identical" and can still reveal each item.
    """
    runs: list[list[T]] = []
    last: Hashable | None = None
    for item in items:
        k = key(item)
        if runs and k is not None and k == last:
            runs[-1].append(item)
        else:
            runs.append([item])
        last = k
    return runs


def step_identity(*, kind: str, name: str, tool_name: str, action_hash: str, output: str, status: str = "") -> Hashable:
    """What makes two steps "identical" for collapsing: a tool call's action hash (tool + canonical
    arguments), or kind, name, status and output for any other step."""
    if tool_name and action_hash:
        return ("tool", action_hash, status)
    return (kind, name, status, output)


def _viewer_identity(step: "DecoratedStep") -> Hashable | None:
    # A step with children heads a subtree: hiding it would strand its children. Depth keeps a run
    # among siblings.
    if step.children:
        return None
    output = f"{step.output_len}:{step.output_head}"
    return (
        step.depth,
        step_identity(
            kind=step.kind,
            name=step.name,
            tool_name=step.tool_name,
            action_hash=step.action_hash,
            output=output,
            status=step.status,
        ),
    )


_ARGS_ONE_LINE = 100


def args_text(arguments: object) -> str:
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


def diff_decorate(diff: TrajectoryDiff) -> TrajectoryDiff:
    """Give each tool call of the diff ``args_text`` (its arguments as text, as the step list shows them),
    and fill ``shown_rows``: a run of identical consecutive rows (same change, same calls on each side
    but for their positions) is its first row, which holds the others in ``repeats``."""
    for row in diff.rows:
        for call in (row.golden, row.this):
            if call is not None:
                call.args_text = args_text(call.arguments) if call.arguments is not None else ""
    diff.shown_rows = []
    for run in steps_collapse(diff.rows, key=_diff_row_identity):
        run[0].repeats = run[1:]
        diff.shown_rows.append(run[0])
    return diff


def _diff_call_identity(call: DiffCall | None) -> Hashable:
    return None if call is None else (call.tool_name, call.args_text, call.status)


def _diff_row_identity(row: DiffRow) -> Hashable:
    return (row.kind, _diff_call_identity(row.golden), _diff_call_identity(row.this))
