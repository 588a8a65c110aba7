"""Agent health score, 0-100, stored in Redis for the dashboard.

Formula (each penalty is subtracted from 100, then the gate caps the result)::

    errors  = 40 x min(1, error_rate / 0.25)      error_rate: traces ended error/killed, last hour
    alerts  = min(40, Σ open alerts: SEV1 25, SEV2 10, SEV3 5)
    cost    = 20 x clamp((p95 trace cost / session_cost_cap - 0.5) / 0.5, 0, 1)   last 24 h; 0 without a cap
    drift   = min(15, 5 x open alerts of the drift detectors)   length/embedding/judge/refusal
    score   = clamp(100 - errors - alerts - cost - drift, 0, 100)
    gate    : killed → 0; paused → min(score, 40)

Redis: ``firebreak:health:<slug>`` = JSON {score, components, at};
``firebreak:health-history:<slug>`` = LPUSH of the same JSON, trimmed to 288 entries (a day at 5 min).
"""

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TypedDict

from django.db.models import Count, Q
from django.utils import timezone

from agents.models import Agent, GateState
from core.redis import get_redis
from incidents.detection.scheduled._sql import TRACE, fetchall
from incidents.models import Alert

HISTORY = 288
DRIFT_DETECTORS = ("length_drift", "embedding_drift", "judge_score", "refusal_shift")
SEVERITY_WEIGHT = {"SEV1": 25, "SEV2": 10, "SEV3": 5}


class HealthComponents(TypedDict):
    """What the score is made of (stored in Redis with it)."""

    error_rate: float
    errors: float
    open_alerts: int
    alerts: int
    p95_cost_vs_cap: float
    cost: float
    drift: int
    gate: str


class Health(TypedDict):
    score: int | None  # None: never scored
    trend: list[int]  # oldest .. newest


def health_key(slug: str) -> str:
    return f"firebreak:health:{slug}"


def history_key(slug: str) -> str:
    return f"firebreak:health-history:{slug}"


def health_score(*, agent: Agent, now: datetime) -> tuple[int, HealthComponents]:
    """(score, components) for one agent; see the module docstring."""
    [(total, failed)] = fetchall(
        f"""SELECT count(*), count(*) FILTER (WHERE status IN ('error', 'killed')) FROM {TRACE}
            WHERE agent_id = %(a)s AND started_at >= %(since)s AND started_at < %(now)s""",
        {"a": agent.pk, "since": now - timedelta(hours=1), "now": now},
    )
    [(p95,)] = fetchall(
        f"""SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY cost) FROM {TRACE}
            WHERE agent_id = %(a)s AND started_at >= %(since)s AND started_at < %(now)s""",
        {"a": agent.pk, "since": now - timedelta(hours=24), "now": now},
    )
    open_alerts = Alert.objects.filter(agent=agent).exclude(status=Alert.Status.RESOLVED)
    by_sev = dict(open_alerts.values_list("suggested_severity").annotate(n=Count("id")))
    drift_n = open_alerts.filter(Q(detector__in=DRIFT_DETECTORS)).count()
    error_rate = failed / total if total else 0.0
    cost_ratio = float(p95) / float(agent.session_cost_cap) if p95 is not None and agent.session_cost_cap else 0.0
    components: HealthComponents = {
        "error_rate": round(error_rate, 4),
        "errors": round(40 * min(1.0, error_rate / 0.25), 2),
        "open_alerts": sum(by_sev.values()),
        "alerts": min(40, sum(SEVERITY_WEIGHT.get(s, 5) * n for s, n in by_sev.items())),
        "p95_cost_vs_cap": round(cost_ratio, 4),
        "cost": round(20 * min(1.0, max(0.0, (cost_ratio - 0.5) / 0.5)), 2),
        "drift": min(15, 5 * drift_n),
        "gate": agent.state,
    }
    score = 100 - components["errors"] - components["alerts"] - components["cost"] - components["drift"]
    score = max(0.0, min(100.0, score))
    if agent.state == GateState.KILLED:
        score = 0.0
    elif agent.state == GateState.PAUSED:
        score = min(score, 40.0)
    return round(score), components


def health_scores_compute(*, now: datetime | None = None) -> dict[str, int]:
    """Score every agent and store the result and its history in Redis. Returns {slug: score}."""
    now = now or timezone.now()
    redis = get_redis()
    scores: dict[str, int] = {}
    for agent in Agent.objects.all():
        score, components = health_score(agent=agent, now=now)
        payload = json.dumps({"score": score, "components": components, "at": now.isoformat()})
        pipe = redis.pipeline()
        pipe.set(health_key(agent.slug), payload)
        pipe.lpush(history_key(agent.slug), payload)
        pipe.ltrim(history_key(agent.slug), 0, HISTORY - 1)
        pipe.execute()
        scores[agent.slug] = score
    return scores


def health_get(*, agent_slugs: Iterable[str]) -> dict[str, Health]:
    """{slug: {"score": int | None, "trend": [oldest .. newest scores]}} from Redis, for the dashboard."""
    slugs = list(agent_slugs)
    if not slugs:
        return {}
    redis = get_redis()
    pipe = redis.pipeline()
    for slug in slugs:
        pipe.get(health_key(slug))
        pipe.lrange(history_key(slug), 0, HISTORY - 1)
    raw = pipe.execute()
    result: dict[str, Health] = {}
    for i, slug in enumerate(slugs):
        current, history = raw[2 * i], raw[2 * i + 1]
        result[slug] = {
            "score": json.loads(current)["score"] if current else None,
            "trend": [json.loads(h)["score"] for h in reversed(history)],
        }
    return result
