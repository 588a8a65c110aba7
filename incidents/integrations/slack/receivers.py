"""Receivers of incidents' and agents' signals that feed Slack: they only enqueue a task, and never
raise (a broker that is down loses a chat post, never the responder's write)."""

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings

from agents.models import Agent, AuditAction
from core import clock
from incidents.integrations.slack import services, tasks

logger = logging.getLogger(__name__)

GATE_ACTIONS = {AuditAction.KILL, AuditAction.PAUSE, AuditAction.RESUME}


def _enqueue(task: Any, *args: object) -> None:
    try:
        task.delay(*args)
    except Exception:
        logger.exception("could not enqueue %s%r for Slack", task.name, args)


def _guard(receiver: Callable[..., None]) -> Callable[..., None]:
    def wrapped(sender: object, **kwargs: Any) -> None:
        if not settings.FIREBREAK_SLACK_BOT_TOKEN or clock.is_set():  # history replayed at a past time: no posts
            return
        try:
            receiver(**kwargs)
        except Exception:
            logger.exception("Slack receiver %s failed", receiver.__name__)

    wrapped.__name__ = receiver.__name__
    return wrapped


@_guard
def on_incident_changed(*, incident_id: int, event: str, **kwargs: Any) -> None:
    if event == "declared":
        _enqueue(tasks.slack_incident_channel_task, incident_id)


@_guard
def on_timeline_recorded(*, incident_id: int, **kwargs: Any) -> None:
    _enqueue(tasks.slack_timeline_task, incident_id)


@_guard
def on_alert_changed(*, alert_id: int, event: str, **kwargs: Any) -> None:
    if event in ("raised", "reopened"):
        if settings.FIREBREAK_SLACK_ALERTS_CHANNEL:
            _enqueue(tasks.slack_alert_post_task, alert_id)
    else:
        _enqueue(tasks.slack_alert_update_task, alert_id, f"alert.{event}")


@_guard
def on_gate_changed(*, agent: Agent, action: str, **kwargs: Any) -> None:
    if action in GATE_ACTIONS:
        for alert_id in services.slack_alert_ids_for_agent(agent_id=agent.pk):
            _enqueue(tasks.slack_alert_update_task, alert_id, f"gate.{action}")
