"""Rules that higher apps add to the gate without agents importing them.

agents sits at the bottom of the layers (agents < traces < incidents < evals).
Where a higher app must take part in a gate decision, it appends a callable
here from its AppConfig.ready():

- ``resume_checks``: ``check(agent, actor)`` raises PermissionDenied to refuse a
  resume (incidents: an agent linked to an open SEV1 needs an admin).
- ``spend_estimators``: ``estimate(agent) -> Decimal | None``, the agent's
  median (p50) session spend (traces), shown on the agent page.
- ``daily_spenders``: ``spend(agent) -> Decimal | None``, the agent's spend on runs
  started in the current UTC day (traces), shown against the daily cost cap.
- ``last_known_good_finders``: ``find(agent) -> {"prompt_version", "model_version"} | None``, the
  versions of the agent's latest traces in the last window without alerts (incidents), used by rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.models import Agent
    from core.actors import Actor

resume_checks: list[Callable[[Agent, Actor], object]] = []
spend_estimators: list[Callable[[Agent], Decimal | None]] = []
last_known_good_finders: list[Callable[[Agent], dict[str, str] | None]] = []
daily_spenders: list[Callable[[Agent], Decimal | None]] = []


def session_spend_p50(agent: Agent) -> Decimal | None:
    for estimate in spend_estimators:
        value = estimate(agent)
        if value is not None:
            return value
    return None


def last_known_good(agent: Agent) -> dict[str, str] | None:
    for find in last_known_good_finders:
        found = find(agent)
        if found is not None:
            return found
    return None


def spend_today(agent: Agent) -> Decimal | None:
    for spend in daily_spenders:
        value = spend(agent)
        if value is not None:
            return value
    return None
