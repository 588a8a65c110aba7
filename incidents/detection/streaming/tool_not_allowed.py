"""Tool misuse: a tool call outside the agent's allowed tools."""

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import step_attribute, tool_steps
from traces.models import Trace

NAME = "tool_not_allowed"
REFUSED = "firebreak.refused"  # a call the SDK or a gateway refused before it happened (a refusal span)


@detector(name=NAME, kind="streaming", defaults={}, rule=Rule.DECLARE, failure_class="tool-misuse")
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """A tool step whose tool is not in agent.allowed_tools (agents with an empty list allow any tool).
    A refused call (the gate stopped it before it ran) still raises: the agent tried, and the title says so."""
    findings = []
    for trace in traces:
        allowed = set(trace.agent.allowed_tools or ())
        if not allowed:
            continue
        seen = set()
        for step in tool_steps(trace):
            if not step.tool_name or step.tool_name in allowed or step.tool_name in seen:
                continue
            seen.add(step.tool_name)
            refused = bool(step_attribute(step, REFUSED))
            title = (
                f"{trace.agent.slug} tried {step.tool_name}, outside its allowed tools (refused at the gate)"
                if refused
                else f"{step.tool_name} is not among {trace.agent.slug}'s allowed tools"
            )
            findings.append(
                Finding(
                    detector=NAME,
                    agent_id=trace.agent_id,
                    key=f"{trace.pk}:{step.tool_name}",
                    title=title,
                    trace_id=trace.pk,
                    span_id=step.span_id,
                    severity="SEV1",
                    details={
                        "trace_id": trace.trace_id,
                        "tool": step.tool_name,
                        "allowed": sorted(allowed),
                        "refused": refused,
                    },
                )
            )
    return findings
