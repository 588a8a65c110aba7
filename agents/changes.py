"""How a gate change is written: one transaction that locks the row, writes the new state and one
audit row; then, on commit, the write-through to Redis (sign, store, publish) and the
``gate_changed`` signal (incidents adds timeline entries from it). Used by the agent services
(``agents/services.py``) and the fleet-wide ones (``agents/fleet.py``)."""

import logging
from collections.abc import Callable, Mapping

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from agents.gate import gate_publish
from agents.models import Agent, AuditEntry, FleetGate
from agents.signals import gate_changed
from core.actors import Actor
from core.errors import Conflict

logger = logging.getLogger(__name__)


REASON_MAX = 2000


class GateConflict(Conflict):
    """The action does not apply to the gate as it is (e.g. resuming an active agent)."""


def clean_reason(reason: str | None, *, required: bool = False) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationError({"reason": "a reason is required"})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"at most {REASON_MAX} characters"})
    return reason


def refuse_agent_keys(actor: Actor) -> None:
    # Defence in depth: the API refuses agent keys before calling a service.
    if actor.agent is not None:
        raise PermissionDenied("an agent's key cannot change a gate")


def state_snapshot(agent: Agent) -> dict[str, object]:
    return {
        "state": agent.state,
        "reason": agent.state_reason,
        "disabled_tools": list(agent.disabled_tools),
        "budget_frozen": agent.budget_frozen,
        "session_cost_cap": str(agent.session_cost_cap) if agent.session_cost_cap is not None else None,
    }


def publish_on_commit(
    agents: list[Agent],
    entries: Mapping[int, AuditEntry | None],
    *,
    action: str,
    actor: Actor,
    reason: str,
    incident: int | None,
) -> None:
    def publish_and_announce() -> None:
        fleet = FleetGate.load()
        gate_publish(agents, fleet)
        for agent in agents:
            # The gate change has committed and is published: a failing listener (a timeline
            # entry, containment) is logged, never turned into an error for the responder.
            results = gate_changed.send_robust(
                sender=Agent,
                agent=agent,
                action=action,
                audit_entry=entries.get(agent.pk),
                actor_label=actor.label,
                reason=reason,
                incident_number=incident,
            )
            for receiver, result in results:
                if isinstance(result, Exception):
                    logger.error("gate_changed receiver %r failed for %s", receiver, agent.slug, exc_info=result)

    transaction.on_commit(publish_and_announce)


def gate_change(
    *,
    agent: Agent,
    action: str,
    actor: Actor,
    reason: str,
    incident_number: int | None,
    change: Callable[[Agent], bool],
    tool: str = "",
    snapshot: Callable[[Agent], dict[str, object]] | None = None,
) -> AuditEntry | None:
    """Lock the agent, apply ``change(agent)`` (returns False when nothing changes), audit, publish on commit."""
    refuse_agent_keys(actor)
    snapshot = snapshot or state_snapshot
    locked = Agent.objects.select_for_update().get(pk=agent.pk)
    before = snapshot(locked)
    if change(locked) is False:
        return None
    locked.gate_version += 1
    locked.save()
    entry = AuditEntry.objects.create(
        agent=locked,
        action=action,
        actor=actor.user,
        actor_label=actor.label,
        reason=reason,
        tool=tool,
        incident_number=incident_number,
        before=before,
        after=snapshot(locked),
        gate_version=locked.gate_version,
    )
    publish_on_commit([locked], {locked.pk: entry}, action=action, actor=actor, reason=reason, incident=incident_number)
    # The caller's object reflects the new state too: copied from the locked row, not read again (a query
    # inside the transaction would hold the lock, and the publish, that much longer).
    for field in Agent._meta.concrete_fields:
        setattr(agent, field.attname, getattr(locked, field.attname))
    return entry
