"""Notifications through Apprise (chat, e-mail, Teams Workflows, webhooks: whatever the routes name).

Two steps, both run by Celery tasks (incidents.notifications.tasks), never in the responder's request:
``notification_fanout`` records one pending Delivery per matching route (target = the route's name,
never its URL), then ``notification_deliver`` sends one of them and marks it sent, or failed with why.
"""

import logging
import re
from datetime import datetime, timedelta

import apprise
from django.db import transaction

from agents.models import Agent
from core import clock
from incidents.models import Alert, Delivery, Incident
from incidents.notifications.deliveries import delivery_failed, delivery_record, delivery_sent
from incidents.notifications.messages import (
    Notice,
    alert_notice,
    gate_notice,
    incident_notice,
    postmortem_overdue_notice,
)
from incidents.notifications.routes import route_get, routes_matching
from incidents.postmortems.metrics import postmortem_backlog

logger = logging.getLogger(__name__)

OVERDUE_EVERY = timedelta(days=1)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


class NotificationFailed(Exception):
    """A target did not accept the message (the task retries)."""


def notification_fanout(*, notice: Notice) -> list[Delivery]:
    """One pending Delivery per route that matches ``notice`` (none when no route does).

    Each delivery holds the title, body and type to send (no secret: the route is named, not its URL).
    """
    routes = routes_matching(kind=notice.kind, agents=notice.agents, severity=notice.severity)
    return [
        delivery_record(
            channel=Delivery.Channel.APPRISE,
            target=route.name,
            event=notice.event,
            alert=notice.alert,
            incident=notice.incident,
            agent=notice.agent,
            detail={"title": notice.title, "body": notice.body, "type": notice.notify_type},
        )
        for route in routes
    ]


def alert_notification_fanout(*, alert_id: int, event: str) -> list[Delivery]:
    alert = Alert.objects.select_related("agent", "trace", "incident").filter(pk=alert_id).first()
    if alert is None:
        logger.warning("notification alert.%s: alert %s no longer exists", event, alert_id)
        return []
    return notification_fanout(notice=alert_notice(alert=alert, event=event))


def incident_notification_fanout(*, incident_id: int, event: str, detail: str = "") -> list[Delivery]:
    incident = Incident.objects.select_related("failure_class", "commander").filter(pk=incident_id).first()
    if incident is None:
        logger.warning("notification incident.%s: incident %s no longer exists", event, incident_id)
        return []
    return notification_fanout(notice=incident_notice(incident=incident, event=event, detail=detail))


def gate_notification_fanout(
    *, agent_id: int, action: str, actor_label: str, reason: str, incident_number: int | None, tool: str = ""
) -> list[Delivery]:
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        return []
    incident = Incident.objects.filter(number=incident_number).first() if incident_number else None
    notice = gate_notice(
        agent=agent, action=action, actor_label=actor_label, reason=reason, incident=incident, tool=tool
    )
    return notification_fanout(notice=notice)


def postmortems_overdue_fanout(*, now: datetime | None = None) -> list[Delivery]:
    """One notification a day for each post-mortem past due (the metrics page's overdue list): an
    incident whose last overdue notification is less than a day old is skipped."""
    now = now or clock.now()
    rows = postmortem_backlog(now=now)["overdue_rows"]
    if not rows:
        return []
    numbers = [row["number"] for row in rows]
    recent = set(
        Delivery.objects.filter(
            channel=Delivery.Channel.APPRISE,
            event="postmortem.overdue",
            incident__number__in=numbers,
            created_at__gt=now - OVERDUE_EVERY,
        ).values_list("incident__number", flat=True)
    )
    incidents = {i.number: i for i in Incident.objects.filter(number__in=numbers).prefetch_related("agents")}
    deliveries: list[Delivery] = []
    for row in rows:
        incident = incidents.get(row["number"])
        if incident is None or row["number"] in recent:
            continue
        notice = postmortem_overdue_notice(incident=incident, due_at=row["due_at"], status=row["status"])
        deliveries += notification_fanout(notice=notice)
    return deliveries


def _why(captured: str) -> str:
    """Apprise's warnings and errors of one attempt, in words, without URLs (they hold tokens)."""
    lines = []
    for line in captured.splitlines():
        text = line.split(" - ", 2)[-1].strip()
        if text and text not in lines:
            lines.append(_URL.sub("<url>", text))
    return " ".join(lines) or "the target did not accept the message"


def notification_deliver(*, delivery_id: int, final: bool = True) -> bool:
    """Send one recorded delivery to its route's URLs.

    Returns True when sent (also when it was already sent: a task delivered twice sends once), False when
    it cannot be sent at all (the delivery or the route is gone; the delivery is failed with why).
    Raises NotificationFailed when a target refused or did not answer; the delivery is marked failed
    with why, and stays pending unless ``final`` (the last attempt).
    """
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        return False
    if delivery.status == Delivery.Status.SENT:
        return True
    route = route_get(delivery.target)
    if route is None:
        delivery_failed(delivery=delivery, error=f"no route named {delivery.target!r} is configured any more")
        return False
    targets = apprise.Apprise()
    for url in route.urls:
        targets.add(url)
    detail = delivery.detail or {}
    with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
        ok = targets.notify(
            title=str(detail.get("title", "")),
            body=str(detail.get("body", "")) or "(no text)",
            notify_type=apprise.NotifyType(detail.get("type", "info")),
        )
    if ok:
        delivery_sent(delivery=delivery)
        logger.info("notification %s sent to route %s", delivery.event, delivery.target)
        return True
    why = _why(captured.getvalue())
    delivery_failed(delivery=delivery, error=why, retrying=not final)
    logger.warning("notification %s to route %s failed: %s", delivery.event, delivery.target, why)
    raise NotificationFailed(why)


@transaction.atomic
def delivery_unqueued(*, delivery: Delivery) -> Delivery:
    """The broker refused the delivery's task: failed, with why (nothing will retry it)."""
    return delivery_failed(delivery=delivery, error="could not be queued: the task broker was unreachable")
