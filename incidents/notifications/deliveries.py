"""The delivery log: one door for every message Firebreak sends out (notifications, pages, chat
posts, tracker issues), so the alert, incident and agent pages can say what went out, where, and
why it failed.

A sender records a delivery as pending before it tries, then marks it sent or failed after each
attempt (a Celery retry marks the same row again: ``attempts`` counts them). Each call is its own
short transaction, so a failed send is logged even when the caller's work rolls back.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from agents.models import Agent
from core import clock
from incidents.models import Alert, Delivery, Incident

ERROR_MAX = 2000


@transaction.atomic
def delivery_record(
    *,
    channel: str,
    target: str,
    event: str,
    alert: Alert | None = None,
    incident: Incident | None = None,
    agent: Agent | None = None,
    detail: dict[str, Any] | None = None,
) -> Delivery:
    """A pending delivery of ``event`` to ``target`` over ``channel``. ``target`` and ``detail`` must hold
    no secret (no token, no routing key, no URL with credentials). Raises ValueError for an unknown channel."""
    if channel not in Delivery.Channel.values:
        raise ValueError(f"unknown delivery channel {channel!r}")
    return Delivery.objects.create(
        channel=channel,
        target=target[:200],
        event=event[:60],
        alert=alert,
        incident=incident,
        agent=agent or (alert.agent if alert is not None else None),
        detail=detail or {},
    )


@transaction.atomic
def delivery_sent(*, delivery: Delivery, detail: dict[str, Any] | None = None) -> Delivery:
    """Mark the delivery sent (one more attempt); ``detail`` is merged into what was recorded."""
    delivery.status = Delivery.Status.SENT
    delivery.attempts += 1
    delivery.error = ""
    delivery.sent_at = clock.now()
    if detail:
        delivery.detail = {**delivery.detail, **detail}
    delivery.save(update_fields=["status", "attempts", "error", "sent_at", "detail"])
    return delivery


@transaction.atomic
def delivery_failed(*, delivery: Delivery, error: str, retrying: bool = False) -> Delivery:
    """One more failed attempt, with why (in words). ``retrying``: another attempt is queued, so the
    delivery stays pending; otherwise it is failed for good."""
    delivery.status = Delivery.Status.PENDING if retrying else Delivery.Status.FAILED
    delivery.attempts += 1
    delivery.error = error[:ERROR_MAX]
    delivery.save(update_fields=["status", "attempts", "error"])
    return delivery


def delivery_list(
    *,
    alert: Alert | None = None,
    incident: Incident | None = None,
    agent: Agent | None = None,
    channels: Iterable[str] | None = None,
    limit: int = 50,
) -> QuerySet[Delivery]:
    """The newest deliveries about an alert, an incident or an agent (newest first)."""
    qs = Delivery.objects.all()
    if alert is not None:
        qs = qs.filter(alert=alert)
    if incident is not None:
        qs = qs.filter(incident=incident)
    if agent is not None:
        qs = qs.filter(agent=agent)
    if channels is not None:
        qs = qs.filter(channel__in=list(channels))
    return qs.order_by("-created_at", "-id")[:limit]
