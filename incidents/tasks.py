"""Celery adapters for incidents: take ids, call a service."""

import logging

from celery import shared_task

from incidents.notify import NotificationFailed, notification_send

logger = logging.getLogger(__name__)


@shared_task(
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


@shared_task(ignore_result=True, expires=300)
def detect_scheduled_task() -> int:
    """Run the scheduled detectors over every active agent; returns how many alerts were raised or bumped."""
    from incidents.detection.schedule import detect_scheduled

    return len(detect_scheduled())


@shared_task(ignore_result=True, expires=60)
def health_scores_task() -> int:
    """Recompute and store every agent's health score; returns how many agents were scored."""
    from incidents.detection.health import health_scores_compute

    return len(health_scores_compute())


@shared_task(ignore_result=True)
def detect_batch_task(trace_pks: list[int]) -> int:
    """Run the streaming detectors on one ingested batch; returns the number of alerts raised or bumped."""
    from incidents.detection.runner import detect_batch

    return len(detect_batch(trace_pks=trace_pks))
