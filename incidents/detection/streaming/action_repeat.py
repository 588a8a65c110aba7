"""Runaway loop: the same tool call (tool + canonical arguments) repeated."""

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import tool_steps
from traces.models import Step, Trace

NAME = "action_repeat"


@detector(name=NAME, kind="streaming", defaults={"consecutive": 3, "per_trace": 10}, rule=Rule.PAUSE,
          failure_class="runaway-loop")  # fmt: skip
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """The same action hash ``consecutive`` times in a row among tool steps, or ``per_trace`` times in one trace."""
    consecutive, per_trace = int(settings["consecutive"]), int(settings["per_trace"])
    findings = []
    for trace in traces:
        steps = [s for s in tool_steps(trace) if s.action_hash]
        counts: dict[str, int] = {}
        longest: dict[str, int] = {}
        hit: dict[str, Step] = {}
        run_len, prev = 0, None
        for step in steps:
            h = step.action_hash
            run_len = run_len + 1 if h == prev else 1
            prev = h
            counts[h] = counts.get(h, 0) + 1
            longest[h] = max(longest.get(h, 0), run_len)
            if h not in hit and (run_len == consecutive or counts[h] == per_trace):
                hit[h] = step
        for h, step in hit.items():
            in_a_row = longest[h] >= consecutive
            how = f"{longest[h]}× in a row" if in_a_row else f"{counts[h]}× in one run"
            findings.append(
                Finding(
                    detector=NAME,
                    agent_id=trace.agent_id,
                    key=f"{trace.pk}:{h}",
                    title=f"{step.tool_name or step.name} called {how} with identical arguments",
                    trace_id=trace.pk,
                    span_id=step.span_id,
                    details={
                        "action_hash": h,
                        "tool": step.tool_name,
                        "count": counts[h],
                        "in_a_row": longest[h],
                        "trace_id": trace.trace_id,
                    },
                )
            )
    return findings
