"""Share of LLM outputs that are refusals, last hour against the 7-day baseline (read from hourly rollups)."""

from datetime import datetime

from agents.models import Agent
from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled._sql import bounds
from incidents.detection.scheduled.rollup import counts, raw_counts

NAME = "refusal_shift"


@detector(
    name=NAME,
    kind="scheduled",
    defaults={"baseline_days": 7, "window_minutes": 60, "delta": 0.1, "min_refusals": 5, "min_samples": 5},
    rule=Rule.NOTIFY,
    failure_class="policy-bypass",
)
def run(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Fire when the window's refusal share ≥ baseline share + ``delta`` and refusals ≥ ``min_refusals``."""
    span = bounds(agent_id=agent.pk, now=now, settings=settings)
    window = raw_counts(agent_id=agent.pk, since=span["wstart"], until=now)
    baseline = counts(agent_id=agent.pk, since=span["bstart"], until=span["wstart"])
    wn, wr, sample = window.llm_outputs, window.llm_refusals, window.refusal_trace
    bn, br = baseline.llm_outputs, baseline.llm_refusals
    if wn < settings["min_samples"] or wr < settings["min_refusals"]:
        return []
    share_w, share_b = wr / wn, (br / bn if bn else 0.0)
    if share_w < share_b + settings["delta"]:
        return []
    return [
        Finding(
            detector=NAME,
            agent_id=agent.pk,
            key="shift",
            title=f"{agent.slug}: {wr} refusals in the last {settings['window_minutes']} min "
            f"({share_w:.0%} of LLM outputs, baseline {share_b:.0%})",
            trace_id=sample,
            severity="SEV2",
            details={
                "window_refusals": wr,
                "window_outputs": wn,
                "baseline_refusals": br,
                "baseline_outputs": bn,
                "window_share": round(share_w, 4),
                "baseline_share": round(share_b, 4),
            },
        )
    ]
