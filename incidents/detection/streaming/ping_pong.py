"""Multi-agent coordination: two agents handing one request back and forth."""

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import tool_steps
from traces.models import Step, Trace

NAME = "ping_pong"
HANDOFF_WORDS = ("handoff", "hand_off", "delegate")


def _bounces(steps: list[Step]) -> tuple[int, tuple[str, str] | None, Step | None]:
    """The longest A→B→A… alternation of agent names over hand-off steps: (changes, (A, B), last step)."""
    best, pair, last = 0, None, None
    run, prev, prev2 = 0, None, None
    for step in steps:
        name = step.agent_name
        if not name or name == prev:
            continue  # consecutive hand-offs by one agent are not a bounce
        run = run + 1 if prev is not None and (prev2 is None or name == prev2) else (1 if prev is not None else 0)
        prev2, prev = prev, name
        # run > 0 only when there was a previous agent, so prev2 is set whenever a bounce counts.
        if run > best and prev2 is not None:
            best, pair, last = run, (prev2, prev), step
    return best, pair, last


@detector(name=NAME, kind="streaming", defaults={"bounces": 4}, rule=Rule.PAUSE,
          failure_class="multi-agent-coordination")  # fmt: skip
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """Within one trace, hand-off tool steps (name contains handoff/delegate) whose agent alternates
    A→B→A→B for >= ``bounces`` hand-overs."""
    findings = []
    for trace in traces:
        handoffs = [s for s in tool_steps(trace) if any(w in s.tool_name.lower() for w in HANDOFF_WORDS)]
        bounces, pair, last = _bounces(handoffs)
        if bounces < settings["bounces"] or pair is None or last is None:
            continue
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=str(trace.pk),
                title=f"{pair[0]} and {pair[1]} handed one request back and forth {bounces + 1} times",
                trace_id=trace.pk,
                span_id=last.span_id,
                details={
                    "trace_id": trace.trace_id,
                    "agents": list(pair),
                    "handoffs": len(handoffs),
                    "bounces": bounces,
                },
            )
        )
    return findings
