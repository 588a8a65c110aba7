"""Context drift: the context (LLM input tokens) growing call after call."""

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import llm_steps
from traces.models import Trace

NAME = "context_growth"


@detector(name=NAME, kind="streaming", defaults={"steps": 6, "factor": 10}, rule=Rule.NOTIFY,
          failure_class="context-drift")  # fmt: skip
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """tokens_in growing for >= ``steps`` consecutive LLM calls, the last >= ``factor`` x the first of the run."""
    need, factor = int(settings["steps"]), settings["factor"]
    findings = []
    for trace in traces:
        llm = [s for s in llm_steps(trace) if s.tokens_in > 0]
        start, best = 0, None
        for i in range(1, len(llm) + 1):
            if i < len(llm) and llm[i].tokens_in > llm[i - 1].tokens_in:
                continue
            first, last = llm[start], llm[i - 1]
            grown = i - start >= need and last.tokens_in >= factor * first.tokens_in
            if grown and (best is None or last.tokens_in / first.tokens_in > best[1].tokens_in / best[0].tokens_in):
                best = (first, last, i - start)
            start = i
        if best is None:
            continue
        first, last, n = best
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=str(trace.pk),
                title=f"Context grew {n} calls in a row: {first.tokens_in:,} → {last.tokens_in:,} input tokens",
                trace_id=trace.pk,
                span_id=last.span_id,
                severity="SEV3",
                details={"trace_id": trace.trace_id, "calls": n, "first": first.tokens_in, "last": last.tokens_in},
            )
        )
    return findings
