"""Context drift / token-budget pressure: an LLM call cut off at the token limit (finish reason ``length``)."""

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import llm_steps
from traces.models import Trace

NAME = "truncation"


@detector(name=NAME, kind="streaming", defaults={}, rule=Rule.NOTIFY, failure_class="context-drift")
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """The first LLM step of a trace whose finish reason is ``length`` (the answer was cut off)."""
    findings = []
    for trace in traces:
        step = next((s for s in llm_steps(trace) if s.finish_reason == "length"), None)
        if step is None:
            continue
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=str(trace.pk),
                title=f"{trace.agent.slug}: a model answer was cut off at the token limit (finish reason length)",
                trace_id=trace.pk,
                span_id=step.span_id,
                severity="SEV3",
                details={"trace_id": trace.trace_id, "model": step.model, "tokens_out": step.tokens_out},
            )
        )
    return findings
