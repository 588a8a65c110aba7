"""Writes to the fleet-wide switches: stop every agent at once, and the change freeze (deploy lock)."""

from collections.abc import Callable

from django.db import transaction

from agents.changes import GateConflict, clean_reason, publish_on_commit, refuse_agent_keys
from agents.models import Agent, AuditAction, AuditEntry, FleetGate
from core.actors import Actor


def _fleet_change(*, action: str, actor: Actor, reason: str, change: Callable[[FleetGate], bool]) -> AuditEntry | None:
    refuse_agent_keys(actor)
    fleet, _ = FleetGate.objects.select_for_update().get_or_create(pk=1)
    before = {"stopped": fleet.stopped, "change_freeze": fleet.change_freeze}
    if change(fleet) is False:
        return None
    fleet.version += 1
    fleet.save()
    entry = AuditEntry.objects.create(
        agent=None,
        action=action,
        actor=actor.user,
        actor_label=actor.label,
        reason=reason,
        before=before,
        after={"stopped": fleet.stopped, "change_freeze": fleet.change_freeze},
        gate_version=fleet.version,
    )
    agents = list(Agent.objects.all())
    publish_on_commit(agents, {}, action=action, actor=actor, reason=reason, incident=None)
    return entry


@transaction.atomic
def fleet_stop(*, actor: Actor, reason: str) -> AuditEntry | None:
    """Stop every agent at once: each gate reads killed until ``fleet_resume``. Each agent keeps
    its own state underneath, so an agent killed on its own stays killed after the fleet resumes.
    A reason is required. None if the fleet was already stopped."""
    reason = clean_reason(reason, required=True)

    def change(f: FleetGate) -> bool:
        if f.stopped:
            return False
        f.stopped, f.stopped_reason = True, reason
        return True

    return _fleet_change(action=AuditAction.FLEET_STOP, actor=actor, reason=reason, change=change)


@transaction.atomic
def fleet_resume(*, actor: Actor, reason: str) -> AuditEntry:
    """Lift the fleet stop. A reason is required; GateConflict if the fleet is not stopped."""
    reason = clean_reason(reason, required=True)

    def change(f: FleetGate) -> bool:
        if not f.stopped:
            return False
        f.stopped, f.stopped_reason = False, ""
        return True

    entry = _fleet_change(action=AuditAction.FLEET_RESUME, actor=actor, reason=reason, change=change)
    if entry is None:
        raise GateConflict("the fleet is not stopped")
    return entry


@transaction.atomic
def change_freeze(*, actor: Actor, on: bool, reason: str) -> AuditEntry | None:
    """Turn the deploy lock on or off (pipelines read it at GET /api/v1/fleet). None if unchanged."""
    reason = clean_reason(reason, required=on)

    def change(f: FleetGate) -> bool:
        if f.change_freeze == on:
            return False
        f.change_freeze, f.change_freeze_reason = on, reason if on else ""
        return True

    action = AuditAction.CHANGE_FREEZE if on else AuditAction.CHANGE_UNFREEZE
    return _fleet_change(action=action, actor=actor, reason=reason, change=change)
