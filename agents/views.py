from django.http import Http404
from django.shortcuts import render

from agents import selectors
from agents.models import Agent


def agent_list(request):
    return render(
        request,
        "agents/agent_list.html",
        {
            "agents": selectors.agent_list(),
            "state_counts": selectors.agent_state_counts(),
            "fleet": selectors.fleet_gate_peek(),
        },
    )


def agent_detail(request, slug: str):
    try:
        agent = selectors.agent_get(slug=slug)
    except Agent.DoesNotExist:
        raise Http404("No agent with this slug.") from None
    # Recent traces load from the traces app by URL (agents sits below traces
    # and does not import it).
    return render(
        request,
        "agents/agent_detail.html",
        {
            "agent": agent,
            "tools": selectors.agent_tool_list(agent=agent),
            "audit_entries": selectors.audit_list(agent=agent, limit=50),
            "fleet": selectors.fleet_gate_peek(),
        },
    )
