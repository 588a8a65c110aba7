"""Shared helpers for streaming detectors."""

from typing import Any

from traces.models import Step, StepKind, Trace

# The attributes streaming detectors read, by the name the runner annotates each step with: the runner
# leaves ``Step.attributes`` deferred (large JSON), and reading it would cost one query per step.
STEP_ATTRIBUTES = {"attr_request_model": "gen_ai.request.model", "attr_refused": "firebreak.refused"}
_ANNOTATION = {key: name for name, key in STEP_ATTRIBUTES.items()}


def step_attribute(step: Step, key: str) -> Any:
    """``step.attributes.get(key)``: from the runner's annotation when it made one, else from the attributes."""
    name = _ANNOTATION.get(key)
    if name is not None and name in step.__dict__:
        return step.__dict__[name]
    return (step.attributes or {}).get(key)


def steps_of(trace: Trace) -> list[Step]:
    """The trace's steps ordered by start: the runner's list (``runner.BatchStep``s), else one query."""
    # ``batch_steps`` is set by the runner (``runner.batch_traces``): an attribute the stubs cannot see.
    steps: list[Step] | None = getattr(trace, "batch_steps", None)
    if steps is None:
        steps = list(trace.steps.order_by("started_at", "id"))
    return steps


def packed(trace: Trace) -> bool:
    """The runner's steps of this trace came packed by ingest (``runner.batch_steps_pack``): each also says
    whether its output refuses (``refuses``) or carries instructions (``instructs``), from ``_text``."""
    return getattr(trace, "batch_packed", False)


def tool_steps(trace: Trace) -> list[Step]:
    return [s for s in steps_of(trace) if s.kind == StepKind.TOOL]


def llm_steps(trace: Trace) -> list[Step]:
    return [s for s in steps_of(trace) if s.kind == StepKind.LLM]
