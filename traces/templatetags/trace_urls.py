"""``{% trace_url %}``: a link to one agent's trajectory of a trace id.

A trace id may name trajectories of several agents (a multi-agent run), so every link to the viewer
carries ``?agent=<slug>`` and opens the right one. Further query parameters follow with ``&``.
"""

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from traces.models import Trace

register = template.Library()


@register.simple_tag
def trace_url(name: str, trace: Trace, *args: object) -> str:
    """``reverse(name, args=[trace.trace_id, *args])`` with the trajectory's agent in the query string."""
    return f"{reverse(name, args=[trace.trace_id, *args])}?{urlencode({'agent': trace.agent.slug})}"
