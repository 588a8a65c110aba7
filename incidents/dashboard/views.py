from collections import Counter
from datetime import timedelta

from django.shortcuts import render
from django.utils import timezone

from agents.models import GateState
from agents.selectors import agent_list, fleet_gate_peek, reasons_pending
from core.replica import replica_reads
from incidents.alerts.selectors import alert_open_feed
from incidents.detection.health import health_get
from incidents.selectors import incident_list
from traces.selectors.runs import agent_activity, trace_recent_list

ACTIVITY_WINDOW = timedelta(hours=1)
EMPTY_ACTIVITY = {"spend": None, "traces": 0, "errors": 0, "killed": 0, "running": 0, "tokens": 0}


@replica_reads
def dashboard(request):
    """The fleet at a glance; with htmx, only the live part (it polls)."""
    part = request.GET.get("part") if request.htmx else None
    context = {"window_minutes": int(ACTIVITY_WINDOW.total_seconds() // 60)}
    if part in (None, "fleet"):
        activity = agent_activity(since=timezone.now() - ACTIVITY_WINDOW)
        # Stopped agents first when the page opens; the 2 s refresh then keeps the order the page
        # opened with (carried in the poll URL), because a card that jumped when its agent was
        # killed would put the next click on another agent.
        agents = _fleet_order(agent_list(), request.GET.get("order", "") if part else "")
        context["fleet_order"] = ",".join(a.slug for a in agents)
        pending = reasons_pending(agents=agents)
        health = health_get(agent_slugs=[a.slug for a in agents])
        context["fleet"] = [
            {
                "agent": a,
                "pending_reason": pending.get(a.pk),
                "health": _health_view(health.get(a.slug)),
                **activity.get(a.pk, EMPTY_ACTIVITY),
            }
            for a in agents
        ]
        # Derived from the agents already loaded: no second query on a page that polls every 2 s.
        context["state_counts"] = {state: 0 for state in GateState.values} | Counter(a.state for a in agents)
    if part in (None, "live"):
        context["fleet_gate"] = fleet_gate_peek()
        context["open_incidents"] = incident_list(open_only=True, limit=20)
        context["open_alerts"] = alert_open_feed(limit=10)
        context["recent_traces"] = trace_recent_list(limit=15)
    template = f"incidents/dashboard.html#{part}" if part in ("fleet", "live") else "incidents/dashboard.html"
    return render(request, template, context)


STOPPED_FIRST = {GateState.KILLED: 0, GateState.PAUSED: 1}


def _fleet_order(agents: list, kept: str) -> list:
    """Stopped agents first (killed, then paused), then by name; ``kept`` (slugs, comma-separated) wins.

    Agents ``kept`` does not name (registered since the page opened) come after it, in the same order.
    """
    fresh = sorted(agents, key=lambda a: (STOPPED_FIRST.get(a.state, 2), a.name.lower(), a.slug))
    place = {slug: i for i, slug in enumerate(s for s in kept.split(",")[:500] if s)}
    if not place:
        return fresh
    return sorted(fresh, key=lambda a: place.get(a.slug, len(place)))


def _health_view(health: dict | None) -> dict:
    """Score and a trend word over the last hour of scores (one a minute) for a fleet card."""
    if not health or health["score"] is None:
        return {"score": None, "trend": ""}
    trend = health["trend"][-60:]
    change = trend[-1] - trend[0] if len(trend) > 1 else 0
    word = "rising" if change >= 5 else "falling" if change <= -5 else "steady"
    return {"score": health["score"], "trend": word, "change": change, "points": trend}
