"""Celery adapters for notifications: take ids, call a service.

The task keeps the name it was registered under in ``incidents.tasks``: messages already
queued name it so.
"""

import logging

from celery import shared_task

from incidents.notifications.services import NotificationFailed, notification_send

logger = logging.getLogger(__name__)


@shared_task(
    name="incidents.tasks.incident_notify_task",
    ignore_result=True,
    autoretry_for=(NotificationFailed,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def incident_notify_task(incident_id: int, event: str, detail: str = "") -> bool:
    """Send one incident notification; retried with backoff when a target fails."""
    try:
        return notification_send(incident_id=incident_id, event=event, detail=detail)
    except NotificationFailed:
        logger.warning("notification %s for incident %s failed; retrying", event, incident_id)
        raise
