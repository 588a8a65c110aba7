"""Spend against the daily cost cap: the cost of an agent's runs started in the current UTC day."""

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Sum

from agents.models import Agent
from core import clock
from traces.models import Trace


def utc_day_start(at: datetime | None = None) -> datetime:
    """Midnight UTC of the day ``at`` (default: ``core.clock.now()``) falls in."""
    at = (at or clock.now()).astimezone(UTC)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def agents_spend_today(agent_ids: Iterable[int], *, at: datetime | None = None) -> dict[int, Decimal]:
    """Per agent id: the cost of its traces started since midnight UTC (agents without runs today: 0)."""
    ids = list(agent_ids)
    spend = {pk: Decimal(0) for pk in ids}
    rows = (
        Trace.objects.filter(agent_id__in=ids, started_at__gte=utc_day_start(at))
        .values("agent_id")
        .annotate(cost=Sum("cost"))
    )
    for row in rows:
        spend[row["agent_id"]] = row["cost"] or Decimal(0)
    return spend


def agent_spend_today(agent: Agent, *, at: datetime | None = None) -> Decimal:
    """The cost of the agent's runs started since midnight UTC."""
    return agents_spend_today([agent.pk], at=at)[agent.pk]
