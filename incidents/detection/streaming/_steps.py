"""Shared helpers for streaming detectors."""

from traces.models import StepKind


def steps_of(trace) -> list:
    """The trace's steps ordered by start: the runner's prefetched list, else one query."""
    steps = getattr(trace, "batch_steps", None)
    if steps is None:
        steps = list(trace.steps.order_by("started_at", "id"))
    return steps


def tool_steps(trace) -> list:
    return [s for s in steps_of(trace) if s.kind == StepKind.TOOL]


def llm_steps(trace) -> list:
    return [s for s in steps_of(trace) if s.kind == StepKind.LLM]
