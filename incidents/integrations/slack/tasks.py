"""Celery adapters of the Slack app: take ids, call a service; retried with backoff while Slack is
unreachable or answers 5xx / rate-limited (each attempt is marked on its Delivery row). When the last
attempt fails too, its delivery is marked failed for good."""

import logging
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from incidents.integrations.slack import services
from incidents.integrations.slack.services import SlackRefused, SlackUnavailable

logger = logging.getLogger(__name__)

# Retried with backoff up to ~10 minutes apart, 8 times: a Slack outage of about an hour is bridged.
# PostgreSQL or Redis (the timeline lock) restarting is retried the same way.
RETRY_FOR = (SlackUnavailable, OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
MAX_RETRIES = 8
# Every Slack task: retried with jittered backoff (up to 10 min apart) on faults that pass, never on a refusal.
RETRYING: dict[str, Any] = {
    "ignore_result": True,
    "autoretry_for": RETRY_FOR,
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": MAX_RETRIES,
}


def _last_attempt(task: Task[Any, Any]) -> bool:
    return task.request.retries >= (task.max_retries or 0)


@shared_task(bind=True, **RETRYING)
def slack_incident_channel_task(self: Task[Any, Any], incident_id: int) -> bool:
    try:
        with services.slack_attempt(last=_last_attempt(self)):
            return services.slack_incident_channel_open(incident_id=incident_id) is not None
    except SlackRefused as exc:
        logger.warning("Slack channel for incident %s not made: %s", incident_id, exc)
        return False


@shared_task(bind=True, **RETRYING)
def slack_timeline_task(self: Task[Any, Any], incident_id: int) -> int:
    # An entry Slack refuses is given up inside the flush: only retryable faults leave it.
    with services.slack_attempt(last=_last_attempt(self)):
        return services.slack_timeline_flush(incident_id=incident_id)


@shared_task(bind=True, **RETRYING)
def slack_alert_post_task(self: Task[Any, Any], alert_id: int) -> bool:
    try:
        with services.slack_attempt(last=_last_attempt(self)):
            return services.slack_alert_post(alert_id=alert_id) is not None
    except SlackRefused as exc:
        logger.warning("Slack post of alert %s refused: %s", alert_id, exc)
        return False


@shared_task(bind=True, **RETRYING)
def slack_alert_update_task(self: Task[Any, Any], alert_id: int, event: str = "") -> bool:
    try:
        with services.slack_attempt(last=_last_attempt(self)):
            return services.slack_alert_update(alert_id=alert_id, event=event)
    except SlackRefused as exc:
        logger.warning("Slack update of alert %s refused: %s", alert_id, exc)
        return False


@shared_task(
    ignore_result=True,
    autoretry_for=RETRY_FOR,
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=3,
)
def slack_respond_task(response_url: str, text: str) -> bool:
    """Response URLs live 30 minutes: a few quick retries only."""
    return services.slack_respond(response_url=response_url, text=text)
