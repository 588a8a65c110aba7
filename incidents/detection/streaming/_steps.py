"""Shared helpers for streaming detectors."""

from traces.models import Step, StepKind, Trace


def steps_of(trace: Trace) -> list[Step]:
    """The trace's steps ordered by start: the runner's prefetched list, else one query."""
    # ``batch_steps`` is the runner's Prefetch(to_attr=...): a query attribute the stubs cannot see.
    steps: list[Step] | None = getattr(trace, "batch_steps", None)
    if steps is None:
        steps = list(trace.steps.order_by("started_at", "id"))
    return steps


def tool_steps(trace: Trace) -> list[Step]:
    return [s for s in steps_of(trace) if s.kind == StepKind.TOOL]


def llm_steps(trace: Trace) -> list[Step]:
    return [s for s in steps_of(trace) if s.kind == StepKind.LLM]
