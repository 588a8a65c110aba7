"""Celery adapters for tracker issues: take ids, call the work in ``sending``."""

import logging

from celery import Task, shared_task

from incidents.integrations.trackers.clients import TrackerUnavailable
from incidents.integrations.trackers.sending import action_item_issue_create

logger = logging.getLogger(__name__)

MAX_RETRIES = 5


@shared_task(bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def action_item_issue_create_task(self: Task, item_id: int, delivery_id: int) -> bool:
    """Create one action item's issue; retried with backoff (30 s, 1, 2, 4, 8 min) while the tracker is down."""
    retries = self.request.retries
    try:
        return action_item_issue_create(item_id=item_id, delivery_id=delivery_id, final=retries >= MAX_RETRIES)
    except TrackerUnavailable as exc:
        logger.warning("tracker issue for action item %s: %s; retrying", item_id, exc)
        raise self.retry(exc=exc, countdown=30 * 2**retries) from exc
