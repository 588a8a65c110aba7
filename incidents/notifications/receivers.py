"""Receivers that turn committed events into notification tasks (connected in IncidentsConfig.ready()).

They only queue a task and never raise: a broker that is down is logged, the responder's write stands.
They send nothing when no route is configured, and nothing while ``core.clock`` is set to another
time (the demo history replays months of incidents through the services: none of that is news).
"""

import logging
from collections.abc import Callable

from agents.models import Agent, AuditEntry
from core import clock
from incidents.notifications.messages import ALERT_EVENTS, GATE_ACTIONS
from incidents.notifications.routes import routes_configured
from incidents.notifications.tasks import alert_notify_task, gate_notify_task, incident_notify_task

logger = logging.getLogger(__name__)


def _enqueue(what: str, send: Callable[[], object]) -> None:
    try:
        if clock.is_set() or not routes_configured():
            return
        send()
    except Exception:  # the broker being down must never fail the responder's write
        logger.exception("could not queue the %s notification", what)


def on_alert_changed(sender: object, *, alert_id: int, event: str, actor_label: str = "", **kwargs: object) -> None:
    if event in ALERT_EVENTS:
        _enqueue(f"alert.{event}", lambda: alert_notify_task.delay(alert_id, event))


def on_incident_changed(
    sender: object, *, incident_id: int, event: str, detail: str = "", actor_label: str = "", **kwargs: object
) -> None:
    _enqueue(f"incident.{event}", lambda: incident_notify_task.delay(incident_id, event, detail))


def on_gate_changed(
    sender: object,
    *,
    agent: Agent,
    action: str,
    audit_entry: AuditEntry | None = None,
    actor_label: str = "",
    reason: str = "",
    incident_number: int | None = None,
    **kwargs: object,
) -> None:
    if action not in GATE_ACTIONS:
        return
    tool = audit_entry.tool if audit_entry is not None else ""
    _enqueue(
        f"gate.{action}",
        lambda: gate_notify_task.delay(agent.pk, action, actor_label, reason, incident_number, tool),
    )
