"""Tool error rate (errors and HTTP 4xx answers), last hour against the 7-day baseline (from hourly rollups)."""

from datetime import datetime

from agents.models import Agent
from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled._sql import bounds
from incidents.detection.scheduled.rollup import counts, raw_counts

NAME = "tool_error_spike"


@detector(
    name=NAME,
    kind="scheduled",
    defaults={"baseline_days": 7, "window_minutes": 60, "factor": 3, "min_errors": 5, "min_baseline_rate": 0.02},
    rule=Rule.NOTIFY,
    failure_class="tool-misuse",
)
def run(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Fire when window error rate ≥ ``factor`` x max(baseline rate, ``min_baseline_rate``), errors ≥ ``min_errors``."""
    span = bounds(agent_id=agent.pk, now=now, settings=settings)
    window = raw_counts(agent_id=agent.pk, since=span["wstart"], until=now)
    baseline = counts(agent_id=agent.pk, since=span["bstart"], until=span["wstart"])
    wn, we, sample = window.tool_calls, window.tool_errors, window.error_trace
    bn, be = baseline.tool_calls, baseline.tool_errors
    if we < settings["min_errors"]:
        return []
    rate_w, rate_b = we / wn, (be / bn if bn else 0.0)
    if rate_w < settings["factor"] * max(rate_b, settings["min_baseline_rate"]):
        return []
    return [
        Finding(
            detector=NAME,
            agent_id=agent.pk,
            key="spike",
            title=f"{agent.slug}: tool errors {rate_w:.0%} in the last {settings['window_minutes']} min "
            f"({we}/{wn}; baseline {rate_b:.1%})",
            trace_id=sample,
            severity="SEV2",
            details={
                "window_errors": we,
                "window_calls": wn,
                "baseline_errors": be,
                "baseline_calls": bn,
                "window_rate": round(rate_w, 4),
                "baseline_rate": round(rate_b, 4),
            },
        )
    ]
