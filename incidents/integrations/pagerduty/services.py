"""Paging with PagerDuty kept in step with Firebreak.

Out: ``page_enqueue`` records one pending delivery (channel pagerduty, target "events API", detail with
the dedup_key and event_action, never the routing key) and hands it to Celery after commit. Which event
an alert or incident change means is decided here, in the order the changes happened, so an
acknowledge is never queued for a key PagerDuty has not been paged with.

In: ``webhook_verify`` checks a v3 webhook's ``X-PagerDuty-Signature``; ``webhook_apply`` acknowledges or
resolves the alert or incident of the event's ``incident_key`` as ``Actor.system("pagerduty")`` —
whose changes the senders skip, so nothing echoes back.
"""

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from core.actors import Actor
from incidents.alerts.services import alert_acknowledge, alert_resolve
from incidents.integrations.pagerduty.tasks import pagerduty_send_task
from incidents.models import Alert, Delivery, Incident, IncidentStatus, Severity
from incidents.notifications.deliveries import delivery_record
from incidents.services import incident_status_set

logger = logging.getLogger(__name__)

ACTOR_LABEL = "pagerduty"
TARGET = "events API"
INCIDENT_KEY = "firebreak-incident-{}"
ALERT_KEY = "firebreak-alert-{}"
KEY_RE = re.compile(r"^firebreak-(incident|alert)-([0-9]{1,12})$")
PAGED_SEVERITIES = (Severity.SEV1, Severity.SEV2)
SEVERITY_RANK: dict[str, int] = {Severity.SEV1: 1, Severity.SEV2: 2, Severity.SEV3: 3}
ACK_STATUSES = (IncidentStatus.INVESTIGATING, IncidentStatus.CONTAINED)
RESOLVE_STATUSES = (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)


def paging_enabled() -> bool:
    """Paging is on when a routing key is set; without one nothing is recorded or sent."""
    return bool(settings.FIREBREAK_PAGERDUTY_ROUTING_KEY)


def _last_action(dedup_key: str) -> str | None:
    """The event_action last sent (or on its way) for ``dedup_key``; failed-for-good rows do not count."""
    row = (
        Delivery.objects.filter(channel=Delivery.Channel.PAGERDUTY, detail__dedup_key=dedup_key)
        .exclude(status=Delivery.Status.FAILED)
        .order_by("-pk")
        .values_list("detail", flat=True)
        .first()
    )
    return row.get("event_action") if isinstance(row, dict) else None


@transaction.atomic
def page_enqueue(
    *, event_action: str, dedup_key: str, event: str, reason: str, alert: Alert | None = None,
    incident: Incident | None = None,
) -> Delivery | None:  # fmt: skip
    """Record a pending page and enqueue its sending after commit. Returns the delivery, or None when
    paging is off or the event would change nothing in PagerDuty: an acknowledge only follows a
    trigger, a resolve a trigger or an acknowledge, for the same dedup_key."""
    if not paging_enabled():
        return None
    last = _last_action(dedup_key)
    if event_action == "acknowledge" and last != "trigger":
        return None
    if event_action == "resolve" and last not in ("trigger", "acknowledge"):
        return None
    delivery = delivery_record(
        channel=Delivery.Channel.PAGERDUTY, target=TARGET, event=event, alert=alert, incident=incident,
        agent=alert.agent if alert is not None else None,
        detail={"dedup_key": dedup_key, "event_action": event_action, "reason": reason[:200]},
    )  # fmt: skip
    pk = delivery.pk

    def enqueue() -> None:
        try:
            pagerduty_send_task.delay(pk)
        except Exception:  # the broker being down must never fail the write that paged
            logger.exception("could not enqueue PagerDuty delivery %s", pk)

    transaction.on_commit(enqueue)
    return delivery


def alert_page(*, alert: Alert) -> Delivery | None:
    """The detector rule "page": trigger PagerDuty for the alert (after the alert commits)."""
    return page_enqueue(event_action="trigger", dedup_key=ALERT_KEY.format(alert.pk), event="alert.raised",
                        reason=f"rule page: {alert.detector}", alert=alert)  # fmt: skip


def page_alert_changed(*, alert_id: int, event: str, rule: str = "") -> Delivery | None:
    """What an alert change means for PagerDuty: reopened with the page rule → trigger; acknowledged →
    acknowledge; resolved → resolve (only when the alert was paged). ``raised`` is the detection
    engine's to page, inside the alert's own transaction."""
    alert = Alert.objects.select_related("agent").filter(pk=alert_id).first()
    if alert is None:
        return None
    key = ALERT_KEY.format(alert.pk)
    if event == "reopened" and rule == "page":
        return page_enqueue(event_action="trigger", dedup_key=key, event="alert.reopened",
                            reason=f"rule page: {alert.detector}", alert=alert)  # fmt: skip
    action = {"acknowledged": "acknowledge", "resolved": "resolve"}.get(event)
    if action is None:
        return None
    return page_enqueue(event_action=action, dedup_key=key, event=f"alert.{event}", reason=f"alert {event}",
                        alert=alert)  # fmt: skip


def page_incident_changed(*, incident_id: int, event: str, detail: str = "") -> Delivery | None:
    """What an incident change means for PagerDuty: declared SEV1/SEV2, or raised to SEV1/SEV2 while
    open → trigger; investigating or contained → acknowledge; resolved or closed → resolve."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return None
    key = INCIDENT_KEY.format(incident.number)
    action = ""
    if event == "declared" and incident.severity in PAGED_SEVERITIES:
        action = "trigger"
    elif event == "severity" and incident.severity in PAGED_SEVERITIES and incident.is_open:
        previous = detail.removeprefix("was ").strip()
        if SEVERITY_RANK.get(incident.severity, 9) < SEVERITY_RANK.get(previous, 9):
            action = "trigger"
    elif event in ACK_STATUSES:
        action = "acknowledge"
    elif event in RESOLVE_STATUSES:
        action = "resolve"
    if not action:
        return None
    return page_enqueue(event_action=action, dedup_key=key, event=f"incident.{event}",
                        reason=f"{incident.severity} {event}" + (f" ({detail})" if detail else ""),
                        incident=incident)  # fmt: skip


def page_commander_taken(*, incident_id: int) -> Delivery | None:
    """Someone took command of the incident: acknowledge its page."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return None
    return page_enqueue(event_action="acknowledge", dedup_key=INCIDENT_KEY.format(incident.number),
                        event="incident.commander", reason="commander took command", incident=incident)  # fmt: skip


# --- inbound: v3 webhooks ------------------------------------------------------------------------


def webhook_secrets() -> list[str]:
    return [s.strip() for s in (settings.FIREBREAK_PAGERDUTY_WEBHOOK_SECRET or "").split(",") if s.strip()]


def webhook_verify(*, body: bytes, header: str, secrets: list[str]) -> bool:
    """True when one ``v1=<hex>`` signature of the header is the HMAC-SHA256 of ``body`` under one of
    ``secrets`` (several signatures, comma separated, while PagerDuty rotates its secret)."""
    offered = [part.strip()[3:] for part in (header or "").split(",") if part.strip().startswith("v1=")]
    if not offered:
        return False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, sig.lower()) for sig in offered):
            return True
    return False


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    event_type: str
    incident_key: str


def webhook_parse(data: Any) -> WebhookEvent:
    """The parts of a v3 webhook Firebreak uses. Raises ValidationError naming the field."""
    if not isinstance(data, dict) or not isinstance(data.get("event"), dict):
        raise ValidationError({"event": ["A v3 webhook is an object with an 'event' object."]})
    event = data["event"]
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise ValidationError({"event.event_type": ["Required: a string such as 'incident.acknowledged'."]})
    payload = event.get("data")
    if payload is not None and not isinstance(payload, dict):
        raise ValidationError({"event.data": ["Must be an object."]})
    key = (payload or {}).get("incident_key")
    return WebhookEvent(
        event_id=str(event.get("id") or "")[:100],
        event_type=event_type[:100],
        incident_key=key[:255] if isinstance(key, str) else "",
    )


def webhook_apply(*, event: WebhookEvent) -> str:
    """Acknowledge or resolve what ``event.incident_key`` names, as ``Actor.system("pagerduty")``.

    Returns what happened in words ("acknowledged alert 12", "ignored: …"). Unknown event types, keys
    that are not Firebreak's, and changes already made (a replay) change nothing. Each change is one
    transaction of the service it calls.
    """
    action = {"incident.acknowledged": "acknowledge", "incident.resolved": "resolve"}.get(event.event_type)
    if action is None:
        return f"ignored: event type {event.event_type} is not acted on"
    match = KEY_RE.match(event.incident_key)
    if match is None:
        return "ignored: the incident_key is not a Firebreak dedup_key"
    kind, number = match.group(1), int(match.group(2))
    actor = Actor.system(ACTOR_LABEL)
    if kind == "alert":
        alert = Alert.objects.filter(pk=number).first()
        if alert is None:
            return f"ignored: no alert {number}"
        if action == "acknowledge" and alert.status != Alert.Status.OPEN:
            return f"unchanged: alert {number} is {alert.status}"
        if action == "resolve" and alert.status == Alert.Status.RESOLVED:
            return f"unchanged: alert {number} is resolved"
        try:
            (alert_acknowledge if action == "acknowledge" else alert_resolve)(alert=alert, actor=actor)
        except ValidationError as exc:  # changed meanwhile by someone else
            return f"unchanged: {'; '.join(exc.messages)}"
        return f"{action}d alert {number}"
    incident = Incident.objects.filter(number=number).first()
    if incident is None:
        return f"ignored: no incident {number}"
    target = IncidentStatus.INVESTIGATING if action == "acknowledge" else IncidentStatus.RESOLVED
    order = list(IncidentStatus.values)
    if order.index(incident.status) >= order.index(target):
        return f"unchanged: incident {number} is {incident.status}"
    try:
        incident_status_set(incident=incident, status=target, actor=actor,
                            note=f"PagerDuty: {event.event_type}")  # fmt: skip
    except ValidationError as exc:
        return f"unchanged: {'; '.join(exc.messages)}"
    return f"{action}d incident {number} ({target})"
