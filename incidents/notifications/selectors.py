"""Reads of the delivery log for the pages (the writes are in ``deliveries``)."""

from collections import defaultdict
from collections.abc import Iterable

from agents.models import Agent
from incidents.models import Alert, Delivery

SHOWN = 20  # deliveries listed per alert, incident or agent


def deliveries_attach(alerts: Iterable[Alert], *, limit: int = SHOWN) -> list[Alert]:
    """Each alert with ``delivery_rows`` set: its newest deliveries, in one query for the whole list."""
    alerts = list(alerts)
    rows: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in Delivery.objects.filter(alert__in=[a.pk for a in alerts]).order_by("-created_at", "-id"):
        if delivery.alert_id is not None and len(rows[delivery.alert_id]) < limit:
            rows[delivery.alert_id].append(delivery)
    for alert in alerts:
        # Display attributes the alert row reads, not model fields.
        alert.delivery_rows = rows.get(alert.pk, [])  # type: ignore[attr-defined]
        alert.delivery_failed = any(d.status == Delivery.Status.FAILED for d in alert.delivery_rows)  # type: ignore[attr-defined]
    return alerts


def gate_deliveries(*, agent: Agent, limit: int = SHOWN) -> list[Delivery]:
    """The newest deliveries about the agent's gate changes (kill, pause, resume, fleet stop…)."""
    return list(Delivery.objects.filter(agent=agent, event__startswith="gate.").order_by("-created_at", "-id")[:limit])
