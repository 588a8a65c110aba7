"""Finer-grained gate changes than stop or go (issue 15): the fallback ladder (``level``), rollback to
the last known good versions (``pinned``) and blocks on one session, user or tenant (``blocked``).

Like every gate change each goes through ``agents.changes.gate_change``: the agent row is locked,
one audit row is written, the gate version moves and the signed document is published on commit
(and ``gate_changed`` puts it on the timeline of the agent's open incidents). Agent keys are
refused. Bad input raises ValidationError naming the field, before anything is written.
"""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction

from agents.changes import GateConflict, clean_reason, gate_change
from agents.gate import BLOCK_KINDS
from agents.models import Agent, AuditAction, AuditEntry, levels_validate
from agents.selectors import level_next
from core import clock
from core.actors import Actor

BLOCK_ID_MAX = 200
BLOCK_TTL_MAX = 90 * 24 * 3600  # a block is containment, not a ban: at most 90 days
VERSION_MAX = 200


def _level_snapshot(agent: Agent) -> dict[str, object]:
    return {"level": agent.level, "levels": agent.level_names}


def _pin_snapshot(agent: Agent) -> dict[str, object]:
    return {"pinned": agent.pinned}


def _blocks_snapshot(agent: Agent) -> dict[str, object]:
    return {"blocks": list(agent.blocks)}


@transaction.atomic
def agent_degrade(
    *, agent: Agent, level: str, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry | None:
    """Move the agent to ``level`` of its ladder (down or back up). None when it is already there.

    Raises ValidationError naming ``level`` when the ladder has no such level.
    """
    reason = clean_reason(reason)
    if not isinstance(level, str) or level not in agent.level_names:
        raise ValidationError({"level": f"not a level of {agent.slug}: one of {', '.join(agent.level_names)}"})

    def change(a: Agent) -> bool:
        if level not in a.level_names:  # the ladder changed under us
            raise ValidationError({"level": f"not a level of {a.slug}"})
        if a.level == level:
            return False
        a.level = level
        return True

    return gate_change(
        agent=agent,
        action=AuditAction.DEGRADE,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
        snapshot=_level_snapshot,
    )


@transaction.atomic
def agent_degrade_step(
    *, agent: Agent, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry | None:
    """One level down the ladder (the detector rule ``degrade``); None when already at the bottom."""
    nxt = level_next(agent, down=True)
    if nxt is None:
        return None
    return agent_degrade(agent=agent, level=nxt, actor=actor, reason=reason, incident_number=incident_number)


@transaction.atomic
def agent_levels_set(*, agent: Agent, levels: object, actor: Actor, reason: str = "") -> AuditEntry | None:
    """Replace the ladder (admins, on the agent page). The current level must stay on it."""
    levels_validate(levels)
    assert isinstance(levels, list)
    reason = clean_reason(reason)
    if agent.level not in [lv["name"] for lv in levels]:
        raise ValidationError({"fallback_levels": f"the current level {agent.level!r} must stay on the ladder"})
    new = [{"name": lv["name"], "description": lv.get("description", "")} for lv in levels]

    def change(a: Agent) -> bool:
        if a.fallback_levels == new:
            return False
        a.fallback_levels = new
        a.full_clean(exclude=["slug"])
        return True

    return gate_change(
        agent=agent,
        action=AuditAction.SETTINGS,
        actor=actor,
        reason=reason,
        incident_number=None,
        change=change,
        snapshot=lambda a: {"fallback_levels": a.fallback_levels},
    )


def _version(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > VERSION_MAX:
        raise ValidationError({name: f"a version, 1-{VERSION_MAX} characters"})
    return value.strip()


@transaction.atomic
def agent_rollback(
    *,
    agent: Agent,
    prompt_version: str,
    model_version: str,
    actor: Actor,
    reason: str,
    incident_number: int | None = None,
) -> AuditEntry:
    """Pin the agent to ``prompt_version`` and ``model_version`` (its last known good): the gate
    document carries ``pinned`` and the SDK exposes it. A reason is required. GateConflict when
    already pinned to exactly these."""
    reason = clean_reason(reason, required=True)
    pinned = {
        "prompt_version": _version("prompt_version", prompt_version),
        "model_version": _version("model_version", model_version),
    }

    def change(a: Agent) -> bool:
        if a.pinned == pinned:
            return False
        a.pinned = pinned
        return True

    entry = gate_change(
        agent=agent,
        action=AuditAction.ROLLBACK,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
        snapshot=_pin_snapshot,
    )
    if entry is None:
        raise GateConflict("the agent is already pinned to these versions")
    return entry


@transaction.atomic
def agent_unpin(*, agent: Agent, actor: Actor, reason: str = "", incident_number: int | None = None) -> AuditEntry:
    """Lift the pin: the agent runs its current versions again. GateConflict when not pinned."""
    reason = clean_reason(reason)

    def change(a: Agent) -> bool:
        if a.pinned is None:
            return False
        a.pinned = None
        return True

    entry = gate_change(
        agent=agent,
        action=AuditAction.UNPIN,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
        snapshot=_pin_snapshot,
    )
    if entry is None:
        raise GateConflict("the agent is not pinned")
    return entry


def _block_target(kind: str, value: object) -> tuple[str, str]:
    if kind not in BLOCK_KINDS:
        raise ValidationError({"kind": f"one of {', '.join(BLOCK_KINDS)}"})
    if not isinstance(value, str) or not value.strip() or len(value) > BLOCK_ID_MAX:
        raise ValidationError({kind: f"an id, 1-{BLOCK_ID_MAX} characters"})
    return kind, value.strip()


def _live(blocks: list[dict[str, str]], now: datetime) -> list[dict[str, str]]:
    return [b for b in blocks if datetime.fromisoformat(b["expires_at"]) > now]


@transaction.atomic
def agent_block(
    *,
    agent: Agent,
    kind: str,
    value: str,
    ttl_seconds: int,
    actor: Actor,
    reason: str = "",
    incident_number: int | None = None,
) -> AuditEntry:
    """Block one session, user or tenant of the agent for ``ttl_seconds``: the SDK's
    ``check(session=, user=, tenant=)`` raises ``Blocked`` for it until it expires or is unblocked.
    Blocking one already blocked sets its new expiry. Expired blocks are dropped here too."""
    kind, value = _block_target(kind, value)
    reason = clean_reason(reason)
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= BLOCK_TTL_MAX:
        raise ValidationError({"ttl_seconds": f"a whole number of seconds, 1 to {BLOCK_TTL_MAX}"})
    now = clock.now()
    expires_at = (now + timedelta(seconds=ttl_seconds)).isoformat()

    def change(a: Agent) -> bool:
        kept = [b for b in _live(list(a.blocks), now) if (b["kind"], b["id"]) != (kind, value)]
        a.blocks = [*kept, {"kind": kind, "id": value, "expires_at": expires_at, "reason": reason}]
        return True

    entry = gate_change(
        agent=agent,
        action=AuditAction.BLOCK,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
        snapshot=_blocks_snapshot,
    )
    assert entry is not None
    return entry


@transaction.atomic
def agent_block_many(
    *,
    agent: Agent,
    kind: str,
    values: list[str],
    ttl_seconds: int,
    actor: Actor,
    reason: str = "",
    incident_number: int | None = None,
) -> list[AuditEntry]:
    """Block several sessions (the blast radius page's "stop these runs"): one audit row each, one transaction."""
    return [
        agent_block(
            agent=agent,
            kind=kind,
            value=v,
            ttl_seconds=ttl_seconds,
            actor=actor,
            reason=reason,
            incident_number=incident_number,
        )
        for v in values
    ]


@transaction.atomic
def agent_unblock(
    *, agent: Agent, kind: str, value: str, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry:
    """Lift a block before it expires. GateConflict when that one is not blocked."""
    kind, value = _block_target(kind, value)
    reason = clean_reason(reason)
    now = clock.now()

    def change(a: Agent) -> bool:
        live = _live(list(a.blocks), now)
        kept = [b for b in live if (b["kind"], b["id"]) != (kind, value)]
        if len(kept) == len(live):
            return False
        a.blocks = kept
        return True

    entry = gate_change(
        agent=agent,
        action=AuditAction.UNBLOCK,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
        snapshot=_blocks_snapshot,
    )
    if entry is None:
        raise GateConflict(f"{kind} {value!r} is not blocked")
    return entry
