import json
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet

from agents import hooks
from agents.models import Agent, AuditEntry, ChangeEvent, FleetGate, GateState
from core import clock


def agent_list() -> QuerySet[Agent]:
    return Agent.objects.all()


def agent_get(*, slug: str) -> Agent:
    return Agent.objects.get(slug=slug)


def audit_list(*, agent: Agent | None = None, limit: int = 50) -> list[AuditEntry]:
    qs = AuditEntry.objects.select_related("agent")
    if agent is not None:
        qs = qs.filter(agent=agent)
    return list(qs[:limit])


def fleet_gate_get() -> FleetGate:
    return FleetGate.load()


def agent_tool_list(*, agent: Agent) -> list[dict[str, Any]]:
    """The agent's tools for display: high-risk first, then by name; each with its gate flags.

    Disabled tools that are not in the allowed list are included too, so a
    responder sees every switch that is set.
    """
    names = list(dict.fromkeys([*agent.allowed_tools, *agent.high_risk_tools, *agent.disabled_tools]))
    high_risk, disabled = set(agent.high_risk_tools), set(agent.disabled_tools)
    tools = [
        {
            "name": name,
            "high_risk": name in high_risk,
            "disabled": name in disabled,
            "allowed": name in agent.allowed_tools,
        }
        for name in names
    ]
    return sorted(tools, key=lambda t: (not t["high_risk"], t["name"]))


def agent_state_counts() -> dict[str, int]:
    """How many agents are in each gate state, with every state present (zero when none)."""
    counts = dict.fromkeys(GateState.values, 0)
    for row in Agent.objects.values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    return counts


def fleet_gate_peek() -> FleetGate:
    """The fleet gate for display, without writing: an unsaved default when the row does not exist yet."""
    return FleetGate.objects.filter(pk=1).first() or FleetGate(pk=1)


def reasons_pending(*, agents: list[Agent]) -> dict[int, AuditEntry]:
    """For stopped agents whose current stop was made without a reason (the one-click kill):
    the audit row a responder can still give a reason to, by agent id."""
    stopped = {a.pk: a for a in agents if a.state != "active" and not a.state_reason}
    if not stopped:
        return {}
    entries = (
        AuditEntry.objects.filter(
            agent_id__in=stopped, action__in=["kill", "pause"], reason="", amendments__isnull=True
        )
        .order_by("agent_id", "-created_at", "-id")
        .distinct("agent_id")
    )
    return {
        e.agent_id: e for e in entries if e.agent_id is not None and e.gate_version == stopped[e.agent_id].gate_version
    }


def audit_entry_get(*, pk: int) -> AuditEntry:
    return AuditEntry.objects.select_related("agent").get(pk=pk)


def change_list(*, agent: Agent, limit: int = 20) -> list[ChangeEvent]:
    """The agent's most recent changes, newest first."""
    return list(ChangeEvent.objects.filter(agent=agent).select_related("agent")[:limit])


def change_list_before(*, agent_ids: list[int], until: datetime, hours: int = 24) -> list[ChangeEvent]:
    """The changes of these agents in the ``hours`` before ``until``, most recent first."""
    return list(
        ChangeEvent.objects.filter(
            agent_id__in=agent_ids, created_at__lte=until, created_at__gt=until - timedelta(hours=hours)
        ).select_related("agent")
    )


def level_next(agent: Agent, *, down: bool) -> str | None:
    """The level one step down (or up) the agent's fallback ladder from the current one; None at the end."""
    names = agent.level_names
    at = names.index(agent.level) if agent.level in names else 0
    step = at + (1 if down else -1)
    return names[step] if 0 <= step < len(names) else None


def containment_panel(agent: Agent) -> dict[str, object]:
    """The agent page's ladder (current level marked), next levels down and up, live blocks by expiry."""
    now = clock.now()
    blocks = [
        {**b, "expires": datetime.fromisoformat(b["expires_at"])}
        for b in agent.blocks
        if datetime.fromisoformat(b["expires_at"]) > now
    ]
    return {
        "ladder": [{**lv, "current": lv["name"] == agent.level} for lv in agent.fallback_levels],
        "level_down": level_next(agent, down=True),
        "level_up": level_next(agent, down=False),
        "blocks": sorted(blocks, key=lambda b: b["expires"]),
        "ladder_json": json.dumps(agent.fallback_levels, indent=1),
    }


def daily_cap_warning(*, agent: Agent) -> str:
    """A warning when the agent's spend on runs started this UTC day is over its daily cost cap ("" if not).

    Said on resume: the cap pauses an agent once per day and cap, so one resumed over it runs on
    until the cap is raised and crossed again, or someone pauses it."""
    cap = agent.daily_cost_cap
    spend = hooks.spend_today(agent) if cap is not None else None
    if cap is None or spend is None or spend <= cap:
        return ""
    return (
        f"{agent.slug} has spent ${spend:,.2f} today (UTC), over its daily cost cap of ${cap:,.2f}: "
        "it will not be paused again today for this cap. Raise the cap if the spend is expected."
    )
