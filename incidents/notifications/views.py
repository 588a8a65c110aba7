"""The delivery log as a fragment, for pages of apps below incidents (the agent page loads it by URL)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from agents.models import Agent
from incidents.notifications.selectors import gate_deliveries


@require_GET
def agent_deliveries(request: HttpRequest, slug: str) -> HttpResponse:
    """Notifications sent about the agent's gate changes (a fragment; a page of its own without htmx)."""
    agent = Agent.objects.filter(slug=slug).first()
    if agent is None:
        raise Http404("No agent with this slug.")
    context = {
        "agent": agent,
        "deliveries": gate_deliveries(agent=agent),
        "deliveries_empty": "No notification about this agent's gate yet.",
    }
    template = "incidents/_deliveries.html" if getattr(request, "htmx", False) else "incidents/agent_deliveries.html"
    return render(request, template, context)
