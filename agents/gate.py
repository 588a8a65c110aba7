"""The gate's fast copy: PostgreSQL state written through to Redis and published.

Key ``firebreak:gate:<slug>`` holds the gate document as JSON; every change is
also published on ``firebreak:gate-events:<slug>`` so SDKs that subscribe hear
it at once. ``version`` only grows: the agent's own gate version plus the fleet
gate's, so a fleet stop or resume moves every agent's version forward.
The SDK fails closed on a missing key, so a Redis flush stops agents until the
reconciler (a beat task) has rewritten every key from PostgreSQL.
"""

import json
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from agents.models import Agent, FleetGate, GateState
from core.redis import get_redis

logger = logging.getLogger(__name__)

KEY = "firebreak:gate:{slug}"
CHANNEL = "firebreak:gate-events:{slug}"
FLEET_KEY = "firebreak:fleet"


def _money(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def gate_document(agent: Agent, fleet: FleetGate) -> dict[str, Any]:
    """The document the SDK and ``GET /api/v1/agents/<slug>/gate`` read."""
    state, reason, changed_by = agent.state, agent.state_reason, agent.state_changed_by
    changed_at = agent.state_changed_at
    if fleet.stopped and state != GateState.KILLED:
        state, reason, changed_by = GateState.KILLED, f"Fleet stop: {fleet.stopped_reason}".strip(), "fleet stop"
        changed_at = fleet.updated_at
    return {
        "agent": agent.slug,
        "state": state,
        "reason": reason,
        "disabled_tools": list(agent.disabled_tools),
        "budget": {
            "frozen": agent.budget_frozen,
            "session_cost_cap": _money(agent.session_cost_cap),
            "daily_cost_cap": _money(agent.daily_cost_cap),
            "session_token_cap": agent.session_token_cap,
            "session_step_cap": agent.session_step_cap,
        },
        "version": agent.gate_version + fleet.version,
        "changed_by": changed_by,
        "changed_at": changed_at.isoformat() if changed_at else None,
        "fleet_stopped": fleet.stopped,
        "change_freeze": fleet.change_freeze,
        "fallback_message": agent.fallback_message,
    }


def fleet_document(fleet: FleetGate) -> dict[str, Any]:
    return {
        "stopped": fleet.stopped,
        "stopped_reason": fleet.stopped_reason,
        "change_freeze": fleet.change_freeze,
        "change_freeze_reason": fleet.change_freeze_reason,
        "version": fleet.version,
    }


def _encode(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _text(raw: object) -> str | None:
    """A reply of the gate's client as text (redis-py types replies loosely; this client returns bytes)."""
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def gate_publish(agents: Iterable[Agent], fleet: FleetGate | None = None) -> int:
    """SET and PUBLISH the documents of ``agents`` in one pipeline. Returns how many.

    Called after commit. A Redis error is logged, not raised: PostgreSQL has
    the change, and the reconciler writes it within seconds; meanwhile SDKs on
    the Redis transport fail closed if Redis is down.
    """
    fleet = fleet or FleetGate.load()
    agents = list(agents)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(FLEET_KEY, _encode(fleet_document(fleet)))
        for agent in agents:
            payload = _encode(gate_document(agent, fleet))
            pipe.set(KEY.format(slug=agent.slug), payload)
            pipe.publish(CHANNEL.format(slug=agent.slug), payload)
        pipe.execute()
    except Exception:
        logger.exception("gate publish to Redis failed for %d agent(s); the reconciler will retry", len(agents))
        return 0
    return len(agents)


def gate_reconcile() -> int:
    """Rewrite Redis from PostgreSQL where a key is missing or differs. Returns how many were fixed.

    Run by beat every few seconds, so a Redis restart or flush cannot
    silently un-kill an agent.
    """
    fleet = FleetGate.load()
    agents = list(Agent.objects.all())
    if not agents:
        return 0
    redis = get_redis()
    keys = [KEY.format(slug=a.slug) for a in agents]
    current = redis.mget(keys)
    stale = [
        a
        for a, raw in zip(agents, current, strict=True)
        if raw is None or _text(raw) != _encode(gate_document(a, fleet))
    ]
    fleet_raw = redis.get(FLEET_KEY)
    if stale or fleet_raw is None or _text(fleet_raw) != _encode(fleet_document(fleet)):
        gate_publish(stale, fleet)
    return len(stale)
