"""LLM-as-judge score drop: a sample of recent outputs scored by an OpenAI-compatible endpoint.

Off unless ``settings.FIREBREAK_JUDGE_URL`` is set. The baseline mean lives in Redis
(``firebreak:judge-baseline:<slug>``): set by the first scored window, then moved slowly (EMA)
by windows that did not drop.
"""

import json
import logging
import re
from datetime import datetime

import httpx
from django.conf import settings as django_settings

from agents.models import Agent
from core.redis import get_redis
from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled._sql import FROM_STEPS, bounds, fetchall

logger = logging.getLogger(__name__)
NAME = "judge_score"
PROMPT = (
    "You grade the answer of an AI agent. Rate how helpful, correct and complete it is, from 0 (useless, "
    'refusal, truncated or wrong) to 1 (excellent). Reply with JSON only: {"score": <number between 0 and 1>}.'
)


def baseline_key(slug: str) -> str:
    return f"firebreak:judge-baseline:{slug}"


def judge_one(client: httpx.Client, *, url: str, model: str, output: str) -> float:
    response = client.post(
        f"{url.rstrip('/')}/chat/completions",
        json={
            "model": model,
            "temperature": 0,
            "messages": [{"role": "system", "content": PROMPT}, {"role": "user", "content": output[:4000]}],
        },
    )
    response.raise_for_status()
    content = response.json()["choices"][0]["message"]["content"]
    match = re.search(r"\{.*\}", content, re.S)
    score = float(json.loads(match.group(0) if match else content)["score"])
    return min(max(score, 0.0), 1.0)


@detector(
    name=NAME,
    kind="scheduled",
    defaults={"baseline_days": 7, "window_minutes": 60, "sample": 20, "drop": 0.3, "min_samples": 5, "ema": 0.2},
    rule=Rule.NOTIFY,
    failure_class="output-quality",
)
def run(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Fire when the window's mean judge score is ≥ ``drop`` below the stored baseline mean."""
    url = getattr(django_settings, "FIREBREAK_JUDGE_URL", "")
    if not url:
        return []
    params = bounds(agent_id=agent.pk, now=now, settings=settings) | {"n": int(settings["sample"])}
    rows = fetchall(
        f"""SELECT s.trace_id, s.output {FROM_STEPS} AND s.kind = 'llm' AND s.started_at >= %(wstart)s
            AND s.output <> '' ORDER BY s.started_at DESC LIMIT %(n)s""",
        params,
    )
    if len(rows) < settings["min_samples"]:
        return []
    headers = {}
    if key := getattr(django_settings, "FIREBREAK_JUDGE_API_KEY", ""):
        headers["Authorization"] = f"Bearer {key}"
    model = getattr(django_settings, "FIREBREAK_JUDGE_MODEL", "") or "judge"
    scores: list[tuple[int, float]] = []
    with httpx.Client(timeout=10, headers=headers) as client:
        for trace_id, output in rows:
            try:
                score = judge_one(client, url=url, model=model, output=output)
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
                logger.warning("judge failed for an output of %s", agent.slug, exc_info=True)
                continue
            scores.append((trace_id, score))
    if len(scores) < settings["min_samples"]:
        return []
    mean = sum(s for _, s in scores) / len(scores)
    redis = get_redis()
    stored = redis.get(baseline_key(agent.slug))
    if stored is None:
        redis.set(baseline_key(agent.slug), json.dumps({"mean": mean, "at": now.isoformat()}))
        return []
    baseline = json.loads(stored)["mean"]
    if baseline - mean < settings["drop"]:
        moved = (1 - settings["ema"]) * baseline + settings["ema"] * mean
        redis.set(baseline_key(agent.slug), json.dumps({"mean": moved, "at": now.isoformat()}))
        return []
    worst = min(scores, key=lambda ts: ts[1])
    return [
        Finding(
            detector=NAME,
            agent_id=agent.pk,
            key="drop",
            title=f"{agent.slug}: judge score fell to {mean:.2f} (baseline {baseline:.2f})",
            trace_id=worst[0],
            severity="SEV3",
            details={"window_mean": round(mean, 4), "baseline_mean": round(baseline, 4), "judged": len(scores)},
        )
    ]
