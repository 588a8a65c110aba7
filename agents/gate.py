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
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from agents.models import Agent, AuditAction, AuditEntry, FleetGate, GateState
from agents.signing import ISSUED_AT, content_of, document_sign, document_verify, now_ms
from core import clock
from core.redis import get_redis

logger = logging.getLogger(__name__)

KEY = "firebreak:gate:{slug}"
CHANNEL = "firebreak:gate-events:{slug}"
FLEET_KEY = "firebreak:fleet"


def _money(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


BLOCK_KINDS = ("session", "user", "tenant")


def blocked_document(blocks: object, now: datetime) -> dict[str, list[dict[str, str]]]:
    """``{"sessions": [...], "users": [...], "tenants": [...]}``, each ``{"id", "expires_at"}``; expired
    blocks are left out (the reconciler re-publishes when one lapses)."""
    out: dict[str, list[dict[str, str]]] = {f"{kind}s": [] for kind in BLOCK_KINDS}
    for block in blocks if isinstance(blocks, list) else []:
        expires = datetime.fromisoformat(block["expires_at"])
        if block.get("kind") in BLOCK_KINDS and expires > now:
            out[f"{block['kind']}s"].append({"id": block["id"], "expires_at": expires.isoformat()})
    for entries in out.values():
        entries.sort(key=lambda e: (e["id"], e["expires_at"]))
    return out


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
            "frozen_at": agent.budget_frozen_at.isoformat() if agent.budget_frozen_at else None,
            "session_cost_cap": _money(agent.session_cost_cap),
            "daily_cost_cap": _money(agent.daily_cost_cap),
            "session_token_cap": agent.session_token_cap,
            "session_step_cap": agent.session_step_cap,
        },
        "allowed_tools": list(agent.allowed_tools),
        "version": agent.gate_version + fleet.version,
        "epoch": fleet.epoch,
        "changed_by": changed_by,
        "changed_at": changed_at.isoformat() if changed_at else None,
        "fleet_stopped": fleet.stopped,
        "change_freeze": fleet.change_freeze,
        "fallback_message": agent.fallback_message,
        "level": agent.level or (agent.level_names or ["full"])[0],
        "levels": agent.level_names,
        "pinned": dict(agent.pinned) if agent.pinned else None,
        "blocked": blocked_document(agent.blocks, clock.now()),
    }


def fleet_document(fleet: FleetGate) -> dict[str, Any]:
    return {
        "stopped": fleet.stopped,
        "stopped_reason": fleet.stopped_reason,
        "change_freeze": fleet.change_freeze,
        "change_freeze_reason": fleet.change_freeze_reason,
        "version": fleet.version,
        "epoch": fleet.epoch,
    }


def _encode(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _decode(raw: object) -> dict[str, Any] | None:
    """A stored document, or None when it is missing or not a JSON object."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


# Every write of a gate document goes through this script: it is stored (and published) only when
# its (epoch, version) is not older than the stored one's, so a writer holding a stale snapshot of
# PostgreSQL (the reconciler racing a kill) can never put an older state back.
_WRITE_IF_NOT_OLDER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, held = pcall(cjson.decode, cur)
  if ok and type(held) == 'table' and type(held.version) == 'number' then
    local new = cjson.decode(ARGV[1])
    local he, ne = tonumber(held.epoch) or 0, tonumber(new.epoch) or 0
    if he > ne or (he == ne and held.version > new.version) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then redis.call('PUBLISH', KEYS[2], ARGV[1]) end
return 1
"""


def _write(pipe: Any, slug: str, payload: str, *, publish: bool) -> None:
    pipe.eval(
        _WRITE_IF_NOT_OLDER, 2, KEY.format(slug=slug), CHANNEL.format(slug=slug), payload, "1" if publish else "0"
    )


def gate_publish(agents: Iterable[Agent], fleet: FleetGate | None = None) -> int:
    """Sign, store and publish the documents of ``agents`` in one pipeline. Returns how many were sent.

    Called after commit. A document older (by epoch, then version) than the one Redis holds is not
    stored. A Redis error is logged, not raised: PostgreSQL has the change, and the reconciler
    writes it within seconds; meanwhile SDKs on the Redis transport fail closed if Redis is down.
    """
    fleet = fleet or FleetGate.load()
    agents = list(agents)
    issued_at = now_ms()
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(FLEET_KEY, _encode(fleet_document(fleet)))
        for agent in agents:
            _write(
                pipe, agent.slug, _encode(document_sign(gate_document(agent, fleet), issued_at=issued_at)), publish=True
            )
        pipe.execute()
    except Exception:
        logger.exception("gate publish to Redis failed for %d agent(s); the reconciler will retry", len(agents))
        return 0
    return len(agents)


def _order(doc: dict[str, Any]) -> tuple[int, int]:
    epoch, version = doc.get("epoch"), doc.get("version")
    return (epoch if isinstance(epoch, int) else 0, version if isinstance(version, int) else 0)


def _epoch_after_restore(fleet: FleetGate, ahead: list[dict[str, Any]]) -> None:
    """Move the epoch past every document Redis holds that is ahead of PostgreSQL (a restore).

    Agents order pushed documents by (epoch, version), and Redis keeps the newest: after a
    database restore the versions go back, and without a new epoch the restored state would reach
    neither. One audit row says so.
    """
    with transaction.atomic():
        locked = FleetGate.objects.select_for_update().get(pk=fleet.pk)
        before = locked.epoch
        locked.epoch = max(locked.epoch, *(_order(d)[0] for d in ahead)) + 1
        locked.save(update_fields=["epoch", "updated_at"])
        AuditEntry.objects.create(
            agent=None,
            action=AuditAction.EPOCH,
            actor_label="gate reconciler",
            reason=f"PostgreSQL is behind the gate copy of {len(ahead)} agent(s), as after a restore: "
            f"epoch {before} -> {locked.epoch}",
            before={"epoch": before},
            after={"epoch": locked.epoch},
            gate_version=locked.version,
        )
    fleet.refresh_from_db()
    logger.warning("gate epoch moved to %s: PostgreSQL is behind the Redis copy (restored?)", fleet.epoch)


def gate_reconcile() -> int:
    """Rewrite Redis from PostgreSQL where a document is missing, differs or is due to be signed again.

    Returns how many documents changed content (those are also published). Run by beat every few
    seconds, so a Redis restart or flush cannot silently un-kill an agent, and a database restore
    that lowers versions still reaches every agent (the epoch moves past the copy's).
    Redis is read before PostgreSQL: a change committing in between can only make PostgreSQL newer
    than the copy, never the copy newer, so only a real restore looks like one.
    """
    slugs = list(Agent.objects.values_list("slug", flat=True))
    if not slugs:
        return 0
    redis = get_redis()
    stored = dict(zip(slugs, (_decode(raw) for raw in redis.mget([KEY.format(slug=s) for s in slugs])), strict=True))
    fleet_raw = _decode(redis.get(FLEET_KEY))
    fleet = FleetGate.load()
    agents = list(Agent.objects.filter(slug__in=slugs))
    ahead = [
        doc
        for a in agents
        if (doc := stored.get(a.slug)) is not None
        and document_verify(doc)
        and _order(doc) > (fleet.epoch, a.gate_version + fleet.version)
    ]
    if ahead:
        _epoch_after_restore(fleet, ahead)
    due = now_ms() - int(settings.FIREBREAK_GATE_RESIGN_SECONDS * 1000)
    changed, resign = [], []
    for agent in agents:
        doc = stored.get(agent.slug)
        if doc is None or not document_verify(doc) or content_of(doc) != gate_document(agent, fleet):
            changed.append(agent)
        elif not isinstance(doc.get(ISSUED_AT), int) or doc[ISSUED_AT] < due:
            resign.append(agent)
    forged = [a.slug for a in agents if (doc := stored.get(a.slug)) is not None and not document_verify(doc)]
    if forged:  # not the server's: it must not hold back the real document by claiming a higher version
        logger.error("gate copy of %s did not verify; replaced from PostgreSQL", ", ".join(forged[:10]))
        redis.delete(*(KEY.format(slug=s) for s in forged))
    if changed or fleet_raw != fleet_document(fleet):
        gate_publish(changed, fleet)
    if resign:  # same content: no event, only a fresh signature for agents that read Redis directly
        issued_at = now_ms()
        pipe = redis.pipeline(transaction=False)
        for agent in resign:
            _write(
                pipe,
                agent.slug,
                _encode(document_sign(gate_document(agent, fleet), issued_at=issued_at)),
                publish=False,
            )
        pipe.execute()
    return len(changed)


def gate_read(slug: str) -> dict[str, Any] | None:
    """The agent's document as ``GET /api/v1/agents/<slug>/gate`` serves it, signed now; None: no agent.

    From the Redis copy when it holds a document the server signed, else from PostgreSQL (Redis
    down or flushed): a read never fails for want of the copy.
    """
    try:
        doc = _decode(get_redis().get(KEY.format(slug=slug)))
    except Exception:  # Redis down: PostgreSQL has the truth
        logger.warning("gate read of %s from PostgreSQL: the Redis copy is unreachable", slug)
        doc = None
    if doc is not None and document_verify(doc):
        return document_sign(doc)
    agent = Agent.objects.filter(slug=slug).first()
    if agent is None:
        return None
    return document_sign(gate_document(agent, FleetGate.objects.filter(pk=1).first() or FleetGate(pk=1)))
