"""Runaway loop: a run past the agent's session caps (steps, tool calls, tokens, cost)."""

from typing import Any

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import steps_of
from traces.models import Trace

NAME = "session_caps"
UNITS = {"steps": "steps", "tool_calls": "tool calls", "tokens": "tokens"}


def _over(what: str, value: Any, cap: Any) -> str:
    """One cap broken, as a person reads it: "1,213,371 > 150,000 tokens", "cost $3.16 > $2.00"."""
    if what == "cost":
        return f"cost ${value:,.2f} > ${cap:,.2f}"
    return f"{value:,} > {cap:,} {UNITS.get(what, what)}"


@detector(name=NAME, kind="streaming", defaults={"max_tool_calls": 60}, rule=Rule.PAUSE,
          failure_class="runaway-loop")  # fmt: skip
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """Per trace: steps > session_step_cap, tool calls > max_tool_calls, tokens > session_token_cap,
    cost > session_cost_cap (caps from the agent; unset caps are skipped)."""
    findings = []
    for trace in traces:
        agent, steps = trace.agent, steps_of(trace)
        tokens = sum(s.tokens_in + s.tokens_out for s in steps)
        cost = sum((s.cost for s in steps), start=0)
        tool_calls = sum(1 for s in steps if s.kind == "tool")
        checks = [
            ("steps", len(steps), agent.session_step_cap),
            ("tool_calls", tool_calls, settings.get("max_tool_calls")),
            ("tokens", tokens, agent.session_token_cap),
            ("cost", cost, agent.session_cost_cap),
        ]
        over = [(what, value, cap) for what, value, cap in checks if cap is not None and value > cap]
        if not over:
            continue
        what = ", ".join(_over(w, v, c) for w, v, c in over)
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=str(trace.pk),
                title=f"Run over its session caps: {what}",
                trace_id=trace.pk,
                span_id=steps[-1].span_id if steps else "",
                details={"trace_id": trace.trace_id, "over": {w: {"value": str(v), "cap": str(c)} for w, v, c in over}},
            )
        )
    return findings
