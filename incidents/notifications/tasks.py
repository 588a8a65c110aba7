"""Celery adapters for notifications: take ids, call a service.

A fan-out task per event records one Delivery per matching route and queues one delivery task each;
the delivery task sends, retried with exponential backoff, and marks its Delivery after every attempt.
``incidents.tasks.incident_notify_task`` keeps the name it was registered under: messages already
queued name it so.
"""

import logging
import random

from celery import shared_task
from django.conf import settings

from incidents.models import Delivery
from incidents.notifications.services import (
    NotificationFailed,
    alert_notification_fanout,
    delivery_unqueued,
    gate_notification_fanout,
    incident_notification_fanout,
    notification_deliver,
    postmortems_overdue_fanout,
)

logger = logging.getLogger(__name__)


def backoff_seconds(retries: int) -> float:
    """Seconds before attempt ``retries + 2``: base * 2^retries, capped, with up to 20 % jitter."""
    base = float(settings.FIREBREAK_NOTIFY_RETRY_SECONDS)
    delay = min(base * (2**retries), float(settings.FIREBREAK_NOTIFY_RETRY_MAX_SECONDS))
    return float(delay * (1 + random.random() / 5))


def _queue(deliveries: list[Delivery]) -> int:
    for delivery in deliveries:
        try:
            notification_deliver_task.delay(delivery.pk)
        except Exception:
            logger.exception("could not queue notification %s to route %s", delivery.event, delivery.target)
            delivery_unqueued(delivery=delivery)
    return len(deliveries)


@shared_task(bind=True, name="incidents.notifications.deliver", ignore_result=True)
def notification_deliver_task(self, delivery_id: int) -> bool:  # type: ignore[no-untyped-def]
    """One delivery to one route; retried FIREBREAK_NOTIFY_ATTEMPTS - 1 times with backoff."""
    attempts = max(1, int(settings.FIREBREAK_NOTIFY_ATTEMPTS))
    final = self.request.retries >= attempts - 1
    try:
        return notification_deliver(delivery_id=delivery_id, final=final)
    except NotificationFailed as exc:
        if final:
            return False
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries), max_retries=attempts - 1) from exc


@shared_task(name="incidents.notifications.alert", ignore_result=True)
def alert_notify_task(alert_id: int, event: str) -> int:
    return _queue(alert_notification_fanout(alert_id=alert_id, event=event))


@shared_task(name="incidents.tasks.incident_notify_task", ignore_result=True)
def incident_notify_task(incident_id: int, event: str, detail: str = "") -> int:
    return _queue(incident_notification_fanout(incident_id=incident_id, event=event, detail=detail))


@shared_task(name="incidents.notifications.gate", ignore_result=True)
def gate_notify_task(
    agent_id: int, action: str, actor_label: str, reason: str, incident_number: int | None = None, tool: str = ""
) -> int:
    return _queue(
        gate_notification_fanout(
            agent_id=agent_id,
            action=action,
            actor_label=actor_label,
            reason=reason,
            incident_number=incident_number,
            tool=tool,
        )
    )


@shared_task(name="incidents.notifications.postmortems_overdue", ignore_result=True)
def postmortems_overdue_notify_task() -> int:
    return _queue(postmortems_overdue_fanout())
