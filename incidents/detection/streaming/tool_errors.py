"""Tool misuse: repeated tool failures in one run."""

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import tool_steps
from traces.models import Trace

NAME = "tool_errors"


@detector(name=NAME, kind="streaming", defaults={"min_failures": 3, "consecutive": 3}, rule=Rule.NOTIFY,
          failure_class="tool-misuse")  # fmt: skip
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """>= min_failures failed tool steps in one trace, or the same tool failing ``consecutive`` times in a row."""
    findings = []
    for trace in traces:
        failed, streak, prev, streak_hit = [], 0, None, None
        for step in tool_steps(trace):
            if step.status != "error":
                streak, prev = 0, None
                continue
            failed.append(step)
            streak = streak + 1 if step.tool_name == prev else 1
            prev = step.tool_name
            if streak >= settings["consecutive"] and streak_hit is None:
                streak_hit = step
        if len(failed) < settings["min_failures"] and streak_hit is None:
            continue
        last = streak_hit or failed[-1]
        tools = sorted({s.tool_name for s in failed})
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=str(trace.pk),
                title=f"{len(failed)} failed tool calls in one run ({', '.join(tools)})",
                trace_id=trace.pk,
                span_id=last.span_id,
                severity="SEV3",
                details={
                    "trace_id": trace.trace_id,
                    "failures": len(failed),
                    "tools": tools,
                    "errors": [s.error_message[:200] for s in failed[:5]],
                },
            )
        )
    return findings
