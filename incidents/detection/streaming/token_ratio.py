"""Cost spiral: a run's LLM input:output token ratio far above the agent's normal."""

from django.db import connection

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import llm_steps
from traces.models import Trace

NAME = "token_ratio"
MIN_BASELINE = 20
NO_BASELINE_MIN_RATIO = 50

_BASELINE_SQL = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY tokens_in::float / tokens_out)
FROM (
    SELECT tokens_in, tokens_out FROM traces_trace
    WHERE agent_id = %s AND status <> 'running' AND tokens_out > 0
    ORDER BY started_at DESC LIMIT %s
) recent
"""


def agent_baseline(agent_id: int, size: int) -> tuple[int, float | None]:
    """(traces, median input:output ratio) over the agent's last ``size`` finished traces, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_BASELINE_SQL, [agent_id, size])
        count, median = cursor.fetchone()
    return count, median


@detector(name=NAME, kind="streaming", rule=Rule.PAUSE, failure_class="runaway-loop",
          defaults={"min_ratio": 30, "factor": 5, "baseline_traces": 200, "min_tokens_in": 20_000})  # fmt: skip
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """ratio >= min_ratio and >= factor x the agent's median (needs 20 baseline traces, else ratio >= 50);
    runs with fewer than ``min_tokens_in`` input tokens are too small to spiral."""
    findings, baselines = [], {}
    for trace in traces:
        llm = llm_steps(trace)
        tokens_in, tokens_out = sum(s.tokens_in for s in llm), sum(s.tokens_out for s in llm)
        if not tokens_out or tokens_in < settings["min_tokens_in"]:
            continue
        ratio = tokens_in / tokens_out
        if ratio < settings["min_ratio"]:
            continue
        if trace.agent_id not in baselines:
            baselines[trace.agent_id] = agent_baseline(trace.agent_id, int(settings["baseline_traces"]))
        count, median = baselines[trace.agent_id]
        if count >= MIN_BASELINE and median:
            if ratio < settings["factor"] * median:
                continue
            normal = f" against {median:.0f}:1 normally"
        else:
            if ratio < max(settings["min_ratio"], NO_BASELINE_MIN_RATIO):
                continue
            normal = ""
        top = max(llm, key=lambda s: s.tokens_in)
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=str(trace.pk),
                title=f"Cost spiral: {ratio:.0f} input tokens per output token{normal}",
                trace_id=trace.pk,
                span_id=top.span_id,
                details={
                    "trace_id": trace.trace_id,
                    "ratio": round(ratio, 1),
                    "baseline_median": median,
                    "baseline_traces": count,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                },
            )
        )
    return findings
