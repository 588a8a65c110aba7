"""Token-length distribution drift of LLM outputs: last hour against the 7-day baseline (from hourly rollups)."""

import math
from datetime import datetime
from typing import Any

from agents.models import Agent
from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled._sql import FROM_STEPS, bounds, fetchall
from incidents.detection.scheduled.rollup import MAX_BINS, ROLLUP_BIN, counts, raw_counts

NAME = "length_drift"


def kl_divergence(window: dict[int, int], baseline: dict[int, int], *, alpha: float = 0.5) -> float:
    """KL(window || baseline) over the union of bins, with additive (Laplace) smoothing ``alpha``."""
    bins = set(window) | set(baseline)
    if not bins:
        return 0.0
    nw, nb, k = sum(window.values()), sum(baseline.values()), len(bins)
    kl = 0.0
    for b in bins:
        p = (window.get(b, 0) + alpha) / (nw + alpha * k)
        q = (baseline.get(b, 0) + alpha) / (nb + alpha * k)
        kl += p * math.log(p / q)
    return kl


@detector(
    name=NAME,
    kind="scheduled",
    defaults={"baseline_days": 7, "window_minutes": 60, "bin": 25, "kl": 0.15, "min_samples": 30},
    rule=Rule.NOTIFY,
    failure_class="output-quality",
)
def run(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Fire when KL(window || baseline) of the tokens_out histogram (``bin``-token bins) is ≥ ``kl``.

    The histogram is built in PostgreSQL (GROUP BY window flag, bin). Small samples inflate KL by about
    (bins - 1) / (2 n); that bias is subtracted so an hour of ordinary traffic does not look like drift.
    """
    width = int(settings["bin"])
    span = bounds(agent_id=agent.pk, now=now, settings=settings)
    if width % ROLLUP_BIN == 0:  # the rollups' bins merge into this width
        window = raw_counts(agent_id=agent.pk, since=span["wstart"], until=now).bins(width)
        baseline = counts(agent_id=agent.pk, since=span["bstart"], until=span["wstart"]).bins(width)
    else:  # a width the rollups cannot give: the steps, as before the rollups
        window, baseline = _raw_histograms(span | {"bin": width, "cap": MAX_BINS})
    nw, nb = sum(window.values()), sum(baseline.values())
    if nw < settings["min_samples"] or nb < settings["min_samples"]:
        return []
    raw = kl_divergence(window, baseline)
    kl = raw - (len(set(window) | set(baseline)) - 1) / (2 * nw)
    if kl < settings["kl"]:
        return []
    mean_w = sum((b + 0.5) * n for b, n in window.items()) / nw * settings["bin"]
    mean_b = sum((b + 0.5) * n for b, n in baseline.items()) / nb * settings["bin"]
    return [
        Finding(
            detector=NAME,
            agent_id=agent.pk,
            key="drift",
            title=f"{agent.slug}: output length drifted (KL {kl:.2f}; ~{mean_w:.0f} vs ~{mean_b:.0f} tokens)",
            severity="SEV3",
            details={
                "kl": round(kl, 4),
                "kl_raw": round(raw, 4),
                "window_n": nw,
                "baseline_n": nb,
                "window_mean_tokens": round(mean_w),
                "baseline_mean_tokens": round(mean_b),
                "window_start": span["wstart"].isoformat(),
            },
        )
    ]


def _raw_histograms(params: dict[str, Any]) -> tuple[dict[int, int], dict[int, int]]:
    """Window and baseline histograms of ``bin``-token bins read from the steps (GROUP BY window flag, bin)."""
    rows = fetchall(
        f"""SELECT s.started_at >= %(wstart)s AS win, LEAST(s.tokens_out / %(bin)s, %(cap)s) AS b, count(*)
            {FROM_STEPS} AND s.kind = 'llm' AND s.tokens_out > 0 GROUP BY 1, 2""",
        params,
    )
    return {b: n for win, b, n in rows if win}, {b: n for win, b, n in rows if not win}
