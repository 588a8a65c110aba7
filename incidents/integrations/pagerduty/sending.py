"""One attempt to send one page: the delivery row says which event, this builds it from the alert or
incident as they are now, posts it and writes the outcome on the same row.

Called from the Celery task (``tasks.pagerduty_send_task``), never in a responder's request.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings

from core import clock
from incidents.integrations.pagerduty import events
from incidents.models import Alert, Delivery, Incident, Severity
from incidents.notifications.deliveries import delivery_failed, delivery_sent

logger = logging.getLogger(__name__)

PD_SEVERITY: dict[str, str] = {Severity.SEV1: "critical", Severity.SEV2: "error", Severity.SEV3: "warning"}
WAIT_FOR_EARLIER = 1.0  # seconds: an acknowledge waits for its trigger still on its way
UNSENT_AFTER = timedelta(minutes=2)  # a page not tried this long after it was recorded was never queued


class PagingRetry(Exception):
    """This attempt failed in a way worth trying again (429, 5xx, no answer, an earlier event in flight)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _base_url() -> str:
    return settings.FIREBREAK_BASE_URL.rstrip("/")


def incident_trigger(incident: Incident) -> events.Trigger:
    agents = sorted(incident.agents.values_list("slug", flat=True))
    fc = incident.failure_class
    url = f"{_base_url()}/incidents/{incident.number}/"
    details: dict[str, Any] = {
        "incident": incident.ref,
        "severity": incident.severity,
        "status": incident.get_status_display(),
        "failure_class": fc.name if fc else "Not yet classified",
        "agents": ", ".join(agents) or "none",
    }
    if incident.commander_id:
        details["commander"] = incident.commander.get_username() if incident.commander else ""
    return events.Trigger(
        summary=("[DRILL] " if incident.agents.filter(is_drill=True).exists() else "")
        + f"{incident.ref} [{incident.severity}] {incident.title}",
        source=f"firebreak/{agents[0]}" if agents else "firebreak",
        severity=PD_SEVERITY.get(incident.severity, "error"),
        timestamp=incident.declared_at,
        component=agents[0] if agents else "",
        group=fc.slug if fc else "",
        event_class="incident",
        custom_details=details,
        link=url,
        link_text=f"{incident.ref} in Firebreak",
    )


def alert_trigger(alert: Alert) -> events.Trigger:
    fc = alert.failure_class
    # An alert from outside (Alertmanager, Grafana…) may name no agent: its source stands in.
    subject = alert.agent.slug if alert.agent is not None else (alert.source or "outside")
    details: dict[str, Any] = {
        "alert": alert.pk,
        "detector": alert.detector,
        "agent": alert.agent.slug if alert.agent is not None else None,
        "occurrences": alert.count,
        "suggested_severity": alert.suggested_severity,
    }
    if alert.trace_id:
        details["trace"] = alert.trace.trace_id if alert.trace else ""
    return events.Trigger(
        summary=("[DRILL] " if alert.agent is not None and alert.agent.is_drill else "")
        + f"Alert #{alert.pk} ({alert.detector}) on {subject}: {alert.title}",
        source=f"firebreak/{subject}",
        severity=PD_SEVERITY.get(alert.suggested_severity, "error"),
        timestamp=alert.last_seen,
        component=subject,
        group=fc.slug if fc else "",
        event_class=alert.detector,
        custom_details=details,
        link=f"{_base_url()}/incidents/alerts/?detector={alert.detector}",
        link_text=f"Alert #{alert.pk} in Firebreak",
    )


def _body(delivery: Delivery, routing_key: str) -> dict[str, Any]:
    action = delivery.detail["event_action"]
    trigger = None
    if action == "trigger":
        if delivery.incident_id:
            incident = Incident.objects.select_related("failure_class", "commander").get(pk=delivery.incident_id)
            trigger = incident_trigger(incident)
        else:
            alert = Alert.objects.select_related("agent", "trace", "failure_class").get(pk=delivery.alert_id or 0)
            trigger = alert_trigger(alert)
    return events.event_body(routing_key=routing_key, event_action=action, dedup_key=delivery.detail["dedup_key"],
                             trigger=trigger, client_url=_base_url() + "/")  # fmt: skip


def pagerduty_deliver(*, delivery_id: int, last_attempt: bool) -> Delivery | None:
    """Send the event of one pending pagerduty delivery and record the attempt on it.

    Returns the delivery (sent or failed), or None when there is nothing to do (gone, or no longer
    pending: a task delivered twice sends once). Raises PagingRetry when the attempt failed in a
    retryable way and ``last_attempt`` is False (the row stays pending with why); on the last attempt
    the row is failed for good with why. A 400 (or any other 4xx) is failed at once: sending the same
    body again cannot help. The routing key is never written to the row.
    """
    delivery = Delivery.objects.filter(pk=delivery_id, channel=Delivery.Channel.PAGERDUTY).first()
    if delivery is None or delivery.status != Delivery.Status.PENDING:
        return None
    dedup_key = delivery.detail.get("dedup_key", "")
    earlier = Delivery.objects.filter(channel=Delivery.Channel.PAGERDUTY, detail__dedup_key=dedup_key,
                                      status=Delivery.Status.PENDING, pk__lt=delivery.pk).exists()  # fmt: skip
    if earlier and not last_attempt:
        # PagerDuty drops an acknowledge or resolve for a key it has not seen: keep the order of one key.
        raise PagingRetry("waiting for an earlier event of the same dedup_key", WAIT_FOR_EARLIER)
    routing_key = settings.FIREBREAK_PAGERDUTY_ROUTING_KEY
    if not routing_key:
        return delivery_failed(delivery=delivery, error="Paging is off: FIREBREAK_PAGERDUTY_ROUTING_KEY is not set.")
    try:
        body = _body(delivery, routing_key)
    except (Alert.DoesNotExist, Incident.DoesNotExist, ValueError, KeyError) as exc:
        return delivery_failed(delivery=delivery, error=f"Could not build the event: {exc}")
    answer = events.event_send(url=settings.FIREBREAK_PAGERDUTY_EVENTS_URL, body=body,
                               timeout=settings.FIREBREAK_PAGERDUTY_TIMEOUT)  # fmt: skip
    if answer.accepted:
        logger.info("pagerduty %s %s accepted", body["event_action"], dedup_key)
        return delivery_sent(delivery=delivery, detail={"http_status": answer.status})
    if answer.retryable and not last_attempt:
        delivery_failed(delivery=delivery, error=answer.message, retrying=True)
        logger.warning("pagerduty %s %s: %s; retrying", body["event_action"], dedup_key, answer.message)
        raise PagingRetry(answer.message, answer.retry_after)
    why = answer.message
    if answer.retryable:
        why = f"Gave up after {delivery.attempts + 1} attempts: {why}"
    logger.error("pagerduty %s %s failed: %s", body["event_action"], dedup_key, why)
    return delivery_failed(delivery=delivery, error=why)


def pagerduty_unsent_ids(*, limit: int = 100) -> list[int]:
    """Pending pages never tried, recorded more than UNSENT_AFTER ago: their task was never queued (the
    broker was down at commit). Oldest first, so the order of one dedup_key holds."""
    cutoff = clock.now() - UNSENT_AFTER
    qs = Delivery.objects.filter(channel=Delivery.Channel.PAGERDUTY, status=Delivery.Status.PENDING, attempts=0,
                                 created_at__lt=cutoff)  # fmt: skip
    return list(qs.order_by("pk").values_list("pk", flat=True)[:limit])
