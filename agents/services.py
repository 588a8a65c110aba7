"""Writes to the agent registry and the gate. Every gate change writes one audit row."""

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from agents import hooks
from agents.gate import gate_publish
from agents.models import (
    Agent,
    AuditAction,
    AuditEntry,
    FleetGate,
    GateState,
    tool_validator,
)
from agents.signals import gate_changed
from core.actors import Actor
from core.errors import Conflict

logger = logging.getLogger(__name__)


@transaction.atomic
def agent_register(
    *,
    slug: str,
    name: str,
    actor: Actor,
    owner: str = "",
    description: str = "",
    environment: str = "production",
    allowed_tools: list[str] | None = None,
    high_risk_tools: list[str] | None = None,
    model_version: str = "",
    prompt_version: str = "",
    session_cost_cap: Decimal | None = None,
    daily_cost_cap: Decimal | None = None,
    session_token_cap: int | None = None,
    session_step_cap: int | None = None,
    fallback_message: str | None = None,
) -> Agent:
    """Create an agent (active gate) and its audit row.

    Raises ValidationError (nothing written) on a bad slug, duplicate slug or
    inconsistent tool lists.
    """
    agent = Agent(
        slug=slug,
        name=name,
        owner=owner,
        description=description,
        environment=environment,
        allowed_tools=list(allowed_tools or []),
        high_risk_tools=list(high_risk_tools or []),
        model_version=model_version,
        prompt_version=prompt_version,
        session_cost_cap=session_cost_cap,
        daily_cost_cap=daily_cost_cap,
        session_token_cap=session_token_cap,
        session_step_cap=session_step_cap,
    )
    if fallback_message is not None:
        agent.fallback_message = fallback_message
    agent.full_clean()
    agent.save()
    AuditEntry.objects.create(
        agent=agent,
        action=AuditAction.REGISTER,
        actor=actor.user,
        actor_label=actor.label,
        after={"state": agent.state, "allowed_tools": agent.allowed_tools},
        gate_version=agent.gate_version,
    )
    # The SDK fails closed on a missing key: publish the new agent's gate at once.
    transaction.on_commit(lambda: gate_publish([agent]))
    return agent


# --- the gate -------------------------------------------------------------------------------------
# Every change: one transaction that locks the row, writes the new state and
# one audit row; then, on commit, the write-through to Redis (set + publish)
# and the ``gate_changed`` signal (incidents adds timeline entries from it).

REASON_MAX = 2000


class GateConflict(Conflict):
    """The action does not apply to the gate as it is (e.g. resuming an active agent)."""


def _clean_reason(reason: str | None, *, required: bool = False) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationError({"reason": "a reason is required"})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"at most {REASON_MAX} characters"})
    return reason


def _refuse_agent_keys(actor: Actor) -> None:
    # Defence in depth: the API refuses agent keys before calling a service.
    if actor.agent is not None:
        raise PermissionDenied("an agent's key cannot change a gate")


def _snapshot(agent: Agent) -> dict[str, object]:
    return {
        "state": agent.state,
        "reason": agent.state_reason,
        "disabled_tools": list(agent.disabled_tools),
        "budget_frozen": agent.budget_frozen,
        "session_cost_cap": str(agent.session_cost_cap) if agent.session_cost_cap is not None else None,
    }


def _after_commit(
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


def _gate_change(
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
    _refuse_agent_keys(actor)
    snapshot = snapshot or _snapshot
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
    _after_commit([locked], {locked.pk: entry}, action=action, actor=actor, reason=reason, incident=incident_number)
    # The caller's object reflects the new state too.
    agent.refresh_from_db()
    return entry


def _set_state(state: str, actor: Actor, reason: str) -> Callable[[Agent], bool]:
    def change(agent: Agent) -> bool:
        if agent.state == state:
            return False
        agent.state = state
        agent.state_reason = reason
        agent.state_changed_at = timezone.now()
        agent.state_changed_by = actor.label
        return True

    return change


@transaction.atomic
def agent_kill(
    *, agent: Agent, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry | None:
    """Kill the agent: its next gate check raises AgentKilled. One click: the reason may come later.

    Returns the audit row, or None when the agent was already killed (nothing written).
    """
    reason = _clean_reason(reason)
    return _gate_change(
        agent=agent,
        action=AuditAction.KILL,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=_set_state(GateState.KILLED, actor, reason),
    )


@transaction.atomic
def agent_pause(
    *, agent: Agent, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry | None:
    """Pause the agent (its trajectory stays readable; the SDK waits or raises). None if already paused.

    A killed agent is not paused: killing is the stronger stop (GateConflict).
    """
    reason = _clean_reason(reason)
    if Agent.objects.filter(pk=agent.pk, state=GateState.KILLED).exists():
        raise GateConflict("the agent is killed; resume it first to pause it")
    return _gate_change(
        agent=agent,
        action=AuditAction.PAUSE,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=_set_state(GateState.PAUSED, actor, reason),
    )


@transaction.atomic
def agent_resume(*, agent: Agent, actor: Actor, reason: str, incident_number: int | None = None) -> AuditEntry:
    """Resume a paused or killed agent. Never one click: a reason is required.

    Raises ValidationError (no reason), GateConflict (already active) or
    PermissionDenied (an agent key, or a rule from ``agents.hooks.resume_checks``
    such as an open SEV1 needing an admin). Nothing is written when it raises.
    """
    reason = _clean_reason(reason, required=True)
    _refuse_agent_keys(actor)
    for check in hooks.resume_checks:
        check(agent, actor)
    entry = _gate_change(
        agent=agent,
        action=AuditAction.RESUME,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=_set_state(GateState.ACTIVE, actor, reason),
    )
    if entry is None:
        raise GateConflict("the agent is already active")
    return entry


def _valid_tool(tool: str) -> str:
    tool = (tool or "").strip()
    try:
        tool_validator(tool)
    except ValidationError:
        raise ValidationError({"tool": "tool names are 1-128 of letters, digits, _ . : / -"}) from None
    return tool


@transaction.atomic
def agent_tool_disable(
    *, agent: Agent, tool: str, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry | None:
    """Disable one tool: the SDK raises ToolDisabled for that tool only. None if already disabled."""
    tool, reason = _valid_tool(tool), _clean_reason(reason)

    def change(a: Agent) -> bool:
        if tool in a.disabled_tools:
            return False
        a.disabled_tools = [*a.disabled_tools, tool]
        return True

    return _gate_change(
        agent=agent,
        action=AuditAction.TOOL_DISABLE,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
        tool=tool,
    )


@transaction.atomic
def agent_tool_enable(
    *, agent: Agent, tool: str, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry | None:
    """Enable a disabled tool again. None if it was not disabled."""
    tool, reason = _valid_tool(tool), _clean_reason(reason)

    def change(a: Agent) -> bool:
        if tool not in a.disabled_tools:
            return False
        a.disabled_tools = [t for t in a.disabled_tools if t != tool]
        return True

    return _gate_change(
        agent=agent,
        action=AuditAction.TOOL_ENABLE,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
        tool=tool,
    )


@transaction.atomic
def agent_budget_freeze(
    *, agent: Agent, actor: Actor, reason: str = "", incident_number: int | None = None
) -> AuditEntry | None:
    """Freeze the budget in one call: new runs refused, running ones drain, and the per-session
    cost cap lowered to the agent's current p50 session spend (when that is known and lower).
    None if already frozen."""
    reason = _clean_reason(reason)
    p50 = hooks.session_spend_p50(agent)

    def change(a: Agent) -> bool:
        if a.budget_frozen:
            return False
        a.budget_frozen = True
        if p50 is not None and (a.session_cost_cap is None or p50 < a.session_cost_cap):
            a.session_cost_cap = p50.quantize(Decimal("0.0001"))
        return True

    return _gate_change(
        agent=agent,
        action=AuditAction.BUDGET_FREEZE,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
    )


@transaction.atomic
def agent_budget_unfreeze(*, agent: Agent, actor: Actor, reason: str, incident_number: int | None = None) -> AuditEntry:
    """Let new runs start again (the lowered cap stays until changed). A reason is required."""
    reason = _clean_reason(reason, required=True)

    def change(a: Agent) -> bool:
        if not a.budget_frozen:
            return False
        a.budget_frozen = False
        return True

    entry = _gate_change(
        agent=agent,
        action=AuditAction.BUDGET_UNFREEZE,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
    )
    if entry is None:
        raise GateConflict("the budget is not frozen")
    return entry


@transaction.atomic
def agent_budget_caps_set(
    *,
    agent: Agent,
    actor: Actor,
    reason: str = "",
    session_cost_cap: Decimal | None,
    daily_cost_cap: Decimal | None,
    session_token_cap: int | None,
    session_step_cap: int | None,
) -> AuditEntry | None:
    """Set the hard caps the SDK's BudgetGuard enforces (None: no cap). None if nothing changed."""
    reason = _clean_reason(reason)
    for name, value in (
        ("session_cost_cap", session_cost_cap),
        ("daily_cost_cap", daily_cost_cap),
        ("session_token_cap", session_token_cap),
        ("session_step_cap", session_step_cap),
    ):
        if value is not None and value < 0:
            raise ValidationError({name: "must be zero or more"})
    new = {
        "session_cost_cap": session_cost_cap,
        "daily_cost_cap": daily_cost_cap,
        "session_token_cap": session_token_cap,
        "session_step_cap": session_step_cap,
    }

    def change(a: Agent) -> bool:
        if all(getattr(a, k) == v for k, v in new.items()):
            return False
        for k, v in new.items():
            setattr(a, k, v)
        a.full_clean(exclude=["slug"])
        return True

    return _gate_change(
        agent=agent, action=AuditAction.BUDGET_CAPS, actor=actor, reason=reason, incident_number=None, change=change
    )


# What the gate document carries from the agent's settings: changed only here (the agent page, the
# API and the admin all come through), so each change is audited, versioned and published.
GATE_SETTINGS = (
    "allowed_tools",
    "high_risk_tools",
    "fallback_message",
    "session_cost_cap",
    "daily_cost_cap",
    "session_token_cap",
    "session_step_cap",
)


@transaction.atomic
def agent_gate_settings_set(*, agent: Agent, actor: Actor, reason: str = "", **changes: object) -> AuditEntry | None:
    """Change gate settings (names in ``GATE_SETTINGS``): one audit row with before and after, a new
    gate version, published on commit. None when nothing changes. Raises ValidationError naming the
    field (an unknown setting, a bad value); nothing is written then."""
    unknown = sorted(set(changes) - set(GATE_SETTINGS))
    if unknown:
        raise ValidationError({name: "not a gate setting" for name in unknown})
    reason = _clean_reason(reason)

    def change(a: Agent) -> bool:
        changed = [name for name, value in changes.items() if getattr(a, name) != value]
        if not changed:
            return False
        for name in changed:
            setattr(a, name, changes[name])
        a.full_clean(exclude=["slug"])
        return True

    return _gate_change(
        agent=agent,
        action=AuditAction.SETTINGS,
        actor=actor,
        reason=reason,
        incident_number=None,
        change=change,
        snapshot=_settings_snapshot,
    )


def _setting_json(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def _settings_snapshot(agent: Agent) -> dict[str, object]:
    return {name: _setting_json(getattr(agent, name)) for name in GATE_SETTINGS}


@transaction.atomic
def audit_reason_add(*, entry: AuditEntry, actor: Actor, reason: str) -> AuditEntry:
    """Give a reason to a gate change made without one (the one-click kill). Once only.

    The audit log is append-only: the reason is a new row (action ``reason``) by its own author,
    pointing at the change it explains (``amends``); the change's own row is never edited. While
    that change still sets the agent's state, the gate shows the reason too (a new gate version,
    published). Raises ValidationError (no reason) or GateConflict (it has a reason already).
    """
    _refuse_agent_keys(actor)
    reason = _clean_reason(reason, required=True)
    locked = AuditEntry.objects.select_for_update().get(pk=entry.pk)
    if locked.reason or locked.action == AuditAction.REASON or locked.amendments.exists():
        raise GateConflict("this change already has a reason")
    amendment = AuditEntry(
        agent_id=locked.agent_id,
        action=AuditAction.REASON,
        actor=actor.user,
        actor_label=actor.label,
        reason=reason,
        tool=locked.tool,
        incident_number=locked.incident_number,
        amends=locked,
        gate_version=locked.gate_version,
    )
    agent = Agent.objects.select_for_update().get(pk=locked.agent_id) if locked.agent_id else None
    current = (
        agent is not None
        and locked.action in (AuditAction.KILL, AuditAction.PAUSE)
        and agent.gate_version == locked.gate_version
        and not agent.state_reason
    )
    if agent is not None and current:
        # Still the change that set the current state: the gate shows the reason too.
        amendment.before = _snapshot(agent)
        agent.state_reason = reason
        agent.gate_version += 1
        agent.save(update_fields=["state_reason", "gate_version", "updated_at"])
        amendment.after = _snapshot(agent)
        amendment.gate_version = agent.gate_version
    amendment.save()
    if agent is not None and current:
        _after_commit(
            [agent],
            {agent.pk: amendment},
            action=AuditAction.REASON,
            actor=actor,
            reason=reason,
            incident=locked.incident_number,
        )
    return amendment


def _fleet_change(*, action: str, actor: Actor, reason: str, change: Callable[[FleetGate], bool]) -> AuditEntry | None:
    _refuse_agent_keys(actor)
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
    _after_commit(agents, {}, action=action, actor=actor, reason=reason, incident=None)
    return entry


@transaction.atomic
def fleet_stop(*, actor: Actor, reason: str) -> AuditEntry | None:
    """Stop every agent at once: each gate reads killed until ``fleet_resume``. Each agent keeps
    its own state underneath, so an agent killed on its own stays killed after the fleet resumes.
    A reason is required. None if the fleet was already stopped."""
    reason = _clean_reason(reason, required=True)

    def change(f: FleetGate) -> bool:
        if f.stopped:
            return False
        f.stopped, f.stopped_reason = True, reason
        return True

    return _fleet_change(action=AuditAction.FLEET_STOP, actor=actor, reason=reason, change=change)


@transaction.atomic
def fleet_resume(*, actor: Actor, reason: str) -> AuditEntry:
    """Lift the fleet stop. A reason is required; GateConflict if the fleet is not stopped."""
    reason = _clean_reason(reason, required=True)

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
    reason = _clean_reason(reason, required=on)

    def change(f: FleetGate) -> bool:
        if f.change_freeze == on:
            return False
        f.change_freeze, f.change_freeze_reason = on, reason if on else ""
        return True

    action = AuditAction.CHANGE_FREEZE if on else AuditAction.CHANGE_UNFREEZE
    return _fleet_change(action=action, actor=actor, reason=reason, change=change)
