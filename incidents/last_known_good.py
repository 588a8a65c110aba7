"""Rollback's "last known good" (issue 15): the prompt and model versions of an agent's most recent
traces in the last window without alerts on the agent. Here because it reads both traces and alerts;
agents reaches it through ``agents.hooks.last_known_good_finders``."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from agents.models import Agent
from core import clock
from incidents.models import Alert
from traces.models import Trace

SCAN_TRACES = 5000


def _window_start(when: datetime, width: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=when.tzinfo)
    return epoch + ((when - epoch) // width) * width


def last_known_good(agent: Agent) -> dict[str, str] | None:
    """``{"prompt_version", "model_version"}`` of the newest trace (both versions known) whose window
    (``FIREBREAK_ROLLBACK_WINDOW_MINUTES`` wide, aligned) no alert on the agent touched; looks back
    ``FIREBREAK_ROLLBACK_LOOKBACK_DAYS``. None when there is no such trace."""
    width = timedelta(minutes=settings.FIREBREAK_ROLLBACK_WINDOW_MINUTES)
    now = clock.now()
    since = now - timedelta(days=settings.FIREBREAK_ROLLBACK_LOOKBACK_DAYS)
    alerts = list(
        Alert.objects.filter(agent=agent, last_seen__gte=since - width).values_list("first_seen", "last_seen")
    )
    traces = (
        Trace.objects.filter(agent=agent, started_at__gte=since, started_at__lte=now)
        .exclude(Q(prompt_version="") | Q(model_version=""))
        .order_by("-started_at")
        .values_list("started_at", "prompt_version", "model_version")[:SCAN_TRACES]
    )
    for started_at, prompt_version, model_version in traces:
        start = _window_start(started_at, width)
        end = start + width
        if not any(first < end and last >= start for first, last in alerts):
            return {"prompt_version": prompt_version, "model_version": model_version}
    return None
