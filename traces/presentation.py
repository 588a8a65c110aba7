"""What the trajectory pages show beside the data: timing bars, slow steps, cut text, arguments as text.

The views call these on what ``traces.selectors`` read; nothing here touches the database.
"""

import json
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias, cast

from traces.models import Step
from traces.selectors.golden import TrajectoryDiff
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
    args_text: str


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
    ``output_more`` (characters of the output not shown) and ``args_text``
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
        step.output_more = max(0, (step.output_len or 0) - STEP_TEXT_LIMIT)
        step.args_text = args_text(step.tool_arguments) if step.tool_arguments is not None else ""
    return decorated


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
    """Give each tool call of the diff ``args_text`` (its arguments as text, as the step list shows them)."""
    for row in diff.rows:
        for call in (row.golden, row.this):
            if call is not None:
                call.args_text = args_text(call.arguments) if call.arguments is not None else ""
    return diff
