"""Embedding-centroid drift: cosine between the window's and the 7-day baseline's mean output embedding."""

import json
import math
from datetime import datetime
from typing import Any

from agents.models import Agent
from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled._sql import FROM_STEPS, bounds, fetchall

NAME = "embedding_drift"
KEYS = ("embedding", "gen_ai.embeddings", "gen_ai.embedding")
_EMB = "COALESCE(s.attributes->'embedding', s.attributes->'gen_ai.embeddings', s.attributes->'gen_ai.embedding')"
_HAS = "s.attributes ?| array['embedding', 'gen_ai.embeddings', 'gen_ai.embedding']"


def centroid(vectors: list[Any]) -> list[float] | None:
    """The mean of the vectors (each JSON: a list of numbers, a list of such lists, or its text)."""
    total, n = None, 0
    for raw in vectors:
        vec = json.loads(raw) if isinstance(raw, str) else raw
        if vec and isinstance(vec[0], list):  # a list of embeddings: take the first
            vec = vec[0]
        if not vec or (total is not None and len(vec) != len(total)):
            continue
        total = [float(x) for x in vec] if total is None else [a + float(b) for a, b in zip(total, vec, strict=True)]
        n += 1
    return [x / n for x in total] if total else None


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 1.0


@detector(
    name=NAME,
    kind="scheduled",
    defaults={"baseline_days": 7, "window_minutes": 60, "cosine": 0.82, "min_samples": 10, "max_vectors": 2000},
    rule=Rule.NOTIFY,
    failure_class="output-quality",
)
def run(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Fire when cosine(window centroid, baseline centroid) < ``cosine``, ≥ ``min_samples`` vectors each side.

    Agents without embeddings in the window cost one LIMIT 1 query. Centroids come from at most
    ``max_vectors`` of the most recent vectors per side.
    """
    params = bounds(agent_id=agent.pk, now=now, settings=settings) | {"n": int(settings["max_vectors"])}
    if not fetchall(f"SELECT 1 {FROM_STEPS} AND s.started_at >= %(wstart)s AND {_HAS} LIMIT 1", params):
        return []
    sides = {}
    for side, cond in (("window", "s.started_at >= %(wstart)s"), ("baseline", "s.started_at < %(wstart)s")):
        rows = fetchall(
            f"SELECT {_EMB} {FROM_STEPS} AND {cond} AND {_HAS} ORDER BY s.started_at DESC LIMIT %(n)s", params
        )
        if len(rows) < settings["min_samples"]:
            return []
        sides[side] = (centroid([r[0] for r in rows]), len(rows))
    (cw, nw), (cb, nb) = sides["window"], sides["baseline"]
    if cw is None or cb is None or len(cw) != len(cb):
        return []
    sim = cosine(cw, cb)
    if sim >= settings["cosine"]:
        return []
    return [
        Finding(
            detector=NAME,
            agent_id=agent.pk,
            key="drift",
            title=f"{agent.slug}: output embeddings drifted (cosine {sim:.2f} to the 7-day centroid)",
            severity="SEV3",
            details={"cosine": round(sim, 4), "window_n": nw, "baseline_n": nb},
        )
    ]
