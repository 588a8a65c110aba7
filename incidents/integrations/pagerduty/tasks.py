"""Celery adapter for paging: take a delivery id, call the one-attempt service, retry with backoff."""

import logging
import random

from celery import shared_task
from django.conf import settings

from incidents.integrations.pagerduty.sending import PagingRetry, pagerduty_deliver, pagerduty_unsent_ids

logger = logging.getLogger(__name__)

BACKOFF_MAX = 60.0


def _countdown(retries: int, retry_after: float | None) -> float:
    """PagerDuty's Retry-After when it sent one, else 1, 2, 4… s (capped), with a little jitter."""
    if retry_after is not None:
        return retry_after
    return min(BACKOFF_MAX, 2.0**retries) * random.uniform(0.8, 1.2)


@shared_task(bind=True, ignore_result=True, max_retries=None)
def pagerduty_send_task(self, delivery_id: int) -> None:
    """Send one PagerDuty event; each attempt is written on its delivery row."""
    attempts = max(1, settings.FIREBREAK_PAGERDUTY_MAX_ATTEMPTS)
    last_attempt = self.request.retries + 1 >= attempts
    try:
        pagerduty_deliver(delivery_id=delivery_id, last_attempt=last_attempt)
    except PagingRetry as exc:
        raise self.retry(countdown=_countdown(self.request.retries, exc.retry_after)) from exc


@shared_task(ignore_result=True)
def pagerduty_requeue_task() -> int:
    """Queue again the pages recorded but never tried (the broker was down when they committed)."""
    ids = pagerduty_unsent_ids()
    for delivery_id in ids:
        pagerduty_send_task.delay(delivery_id)
    if ids:
        logger.warning("PagerDuty: queued %d page(s) again that were never tried", len(ids))
    return len(ids)
