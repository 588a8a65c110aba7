"""Writes to the agent registry and to each agent's gate. Every gate change writes one audit row
(through ``agents/changes.py``); the fleet-wide switches are in ``agents/fleet.py``."""

import logging
from collections.abc import Callable
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from agents import hooks
from agents.change_log import freeze_guarded
from agents.changes import (
    GateConflict,
    clean_reason,
    gate_change,
    publish_on_commit,
    refuse_agent_keys,
    state_snapshot,
)
from agents.gate import gate_publish
from agents.models import (
    Agent,
    AuditAction,
    AuditEntry,
    GateState,
    tool_validator,
)
from core import clock
from core.actors import Actor

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


def _set_state(state: str, actor: Actor, reason: str) -> Callable[[Agent], bool]:
    def change(agent: Agent) -> bool:
        if agent.state == state:
            return False
        agent.state = state
        agent.state_reason = reason
        agent.state_changed_at = clock.now()
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
    reason = clean_reason(reason)
    return gate_change(
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
    reason = clean_reason(reason)
    if Agent.objects.filter(pk=agent.pk, state=GateState.KILLED).exists():
        raise GateConflict("the agent is killed; resume it first to pause it")
    return gate_change(
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
    reason = clean_reason(reason, required=True)
    refuse_agent_keys(actor)
    for check in hooks.resume_checks:
        check(agent, actor)
    entry = gate_change(
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
    tool, reason = _valid_tool(tool), clean_reason(reason)

    def change(a: Agent) -> bool:
        if tool in a.disabled_tools:
            return False
        a.disabled_tools = [*a.disabled_tools, tool]
        return True

    return gate_change(
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
    tool, reason = _valid_tool(tool), clean_reason(reason)

    def change(a: Agent) -> bool:
        if tool not in a.disabled_tools:
            return False
        a.disabled_tools = [t for t in a.disabled_tools if t != tool]
        return True

    return gate_change(
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
    """Freeze the budget in one call: new runs refused, runs in flight drain under the caps they
    started with. No cap is changed (the gate document says ``frozen_at``). None if already frozen."""
    reason = clean_reason(reason)

    def change(a: Agent) -> bool:
        if a.budget_frozen:
            return False
        a.budget_frozen = True
        a.budget_frozen_at = clock.now()
        return True

    return gate_change(
        agent=agent,
        action=AuditAction.BUDGET_FREEZE,
        actor=actor,
        reason=reason,
        incident_number=incident_number,
        change=change,
    )


@transaction.atomic
def agent_budget_unfreeze(*, agent: Agent, actor: Actor, reason: str, incident_number: int | None = None) -> AuditEntry:
    """Let new runs start again; the caps are as they were before the freeze. A reason is required."""
    reason = clean_reason(reason, required=True)

    def change(a: Agent) -> bool:
        if not a.budget_frozen:
            return False
        a.budget_frozen = False
        a.budget_frozen_at = None
        return True

    entry = gate_change(
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


@freeze_guarded("changing the budget caps")
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
    reason = clean_reason(reason)
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

    return gate_change(
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


@freeze_guarded("changing the agent's settings")
@transaction.atomic
def agent_gate_settings_set(*, agent: Agent, actor: Actor, reason: str = "", **changes: object) -> AuditEntry | None:
    """Change gate settings (names in ``GATE_SETTINGS``): one audit row with before and after, a new
    gate version, published on commit. None when nothing changes. Raises ValidationError naming the
    field (an unknown setting, a bad value); nothing is written then."""
    unknown = sorted(set(changes) - set(GATE_SETTINGS))
    if unknown:
        raise ValidationError({name: "not a gate setting" for name in unknown})
    reason = clean_reason(reason)

    def change(a: Agent) -> bool:
        changed = [name for name, value in changes.items() if getattr(a, name) != value]
        if not changed:
            return False
        for name in changed:
            setattr(a, name, changes[name])
        a.full_clean(exclude=["slug"])
        return True

    return gate_change(
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
    refuse_agent_keys(actor)
    reason = clean_reason(reason, required=True)
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
        amendment.before = state_snapshot(agent)
        agent.state_reason = reason
        agent.gate_version += 1
        agent.save(update_fields=["state_reason", "gate_version", "updated_at"])
        amendment.after = state_snapshot(agent)
        amendment.gate_version = agent.gate_version
    amendment.save()
    if agent is not None and current:
        publish_on_commit(
            [agent],
            {agent.pk: amendment},
            action=AuditAction.REASON,
            actor=actor,
            reason=reason,
            incident=locked.incident_number,
        )
    return amendment
