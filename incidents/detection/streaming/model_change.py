"""Silent model change: a span's response model differs from the one the agent's expected model
name first answered with.

Providers answer a request for ``gpt-4o`` with a dated snapshot (``gpt-4o-2024-08-06``), so the
expected name (the span's ``gen_ai.request.model``, else the trace's or the agent's model version)
maps to the first response model seen for it (``ModelSnapshot``); a later, different response model
raises, once per (agent, expected, response) pair.
"""

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import llm_steps, step_attribute
from incidents.models import ModelSnapshot
from traces.models import Step, Trace

NAME = "model_change"
REQUEST_MODEL = "gen_ai.request.model"


def _expected(step: Step, trace: Trace) -> str:
    requested = step_attribute(step, REQUEST_MODEL)
    if isinstance(requested, str) and requested.strip():
        return requested.strip()[:200]
    return (trace.model_version or trace.agent.model_version or "").strip()[:200]


def _baseline(trace: Trace, step: Step, expected: str, cache: dict[tuple[int, str], str]) -> str:
    key = (trace.agent_id, expected)
    if key not in cache:
        found = ModelSnapshot.objects.filter(agent_id=trace.agent_id, expected=expected).values_list(
            "response", flat=True
        )
        response = next(iter(found), None)
        if response is None:
            # ON CONFLICT DO NOTHING: two batches seeing a new name at once keep the first without an
            # error in PostgreSQL's log; then read back whichever won.
            ModelSnapshot.objects.bulk_create(
                [
                    ModelSnapshot(
                        agent_id=trace.agent_id, expected=expected, response=step.model[:200], first_trace=trace
                    )
                ],
                ignore_conflicts=True,
            )
            response = ModelSnapshot.objects.get(agent_id=trace.agent_id, expected=expected).response
        cache[key] = response
    return cache[key]


@detector(
    name=NAME,
    kind="streaming",
    defaults={},
    rule=Rule.NOTIFY,
    failure_class="output-quality",
    description="A response model other than the first one the expected model name answered with",
)
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    cache: dict[tuple[int, str], str] = {}
    raised: set[tuple[int, str, str]] = set()
    for trace in traces:
        for step in llm_steps(trace):
            if not step.model:
                continue
            expected = _expected(step, trace)
            if not expected:
                continue
            baseline = _baseline(trace, step, expected, cache)
            if step.model == baseline or (trace.agent_id, expected, step.model) in raised:
                continue
            raised.add((trace.agent_id, expected, step.model))
            findings.append(
                Finding(
                    detector=NAME,
                    agent_id=trace.agent_id,
                    key=f"{expected}:{step.model}",
                    title=f"{trace.agent.slug} answered {expected} with {step.model}, not {baseline}",
                    trace_id=trace.pk,
                    span_id=step.span_id,
                    severity="SEV3",
                    details={
                        "trace_id": trace.trace_id,
                        "expected": expected,
                        "first_response_model": baseline,
                        "response_model": step.model,
                    },
                )
            )
    return findings
