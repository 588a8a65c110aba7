"""Writes to the agent registry and the gate. Every gate change writes one audit row."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, ApiKey, ApiKeyScope, AuditAction, AuditEntry


def actor_label_for(actor) -> str:
    """A readable name for whoever acts: a user, an agent key, or a system component (a str)."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return getattr(actor, "username", None) or str(actor)


def _actor_user(actor):
    return actor if getattr(actor, "pk", None) and hasattr(actor, "groups") else None


@transaction.atomic
def agent_register(
    *,
    slug: str,
    name: str,
    actor=None,
    owner: str = "",
    description: str = "",
    environment: str = "production",
    allowed_tools: list[str] | None = None,
    high_risk_tools: list[str] | None = None,
    model_version: str = "",
    prompt_version: str = "",
    session_cost_cap: Decimal | None = None,
    daily_cost_cap: Decimal | None = None,
    session_token_cap: int | None = None,
    session_step_cap: int | None = None,
    fallback_message: str | None = None,
) -> Agent:
    """Create an agent (active gate) and its audit row.

    Raises ValidationError (nothing written) on a bad slug, duplicate slug or
    inconsistent tool lists.
    """
    agent = Agent(
        slug=slug,
        name=name,
        owner=owner,
        description=description,
        environment=environment,
        allowed_tools=list(allowed_tools or []),
        high_risk_tools=list(high_risk_tools or []),
        model_version=model_version,
        prompt_version=prompt_version,
        session_cost_cap=session_cost_cap,
        daily_cost_cap=daily_cost_cap,
        session_token_cap=session_token_cap,
        session_step_cap=session_step_cap,
    )
    if fallback_message is not None:
        agent.fallback_message = fallback_message
    agent.full_clean()
    agent.save()
    AuditEntry.objects.create(
        agent=agent,
        action=AuditAction.REGISTER,
        actor=_actor_user(actor),
        actor_label=actor_label_for(actor),
        after={"state": agent.state, "allowed_tools": agent.allowed_tools},
        gate_version=agent.gate_version,
    )
    return agent


@transaction.atomic
def api_key_create(*, agent: Agent | None = None, user=None, scopes: list[str], name: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with the raw value, which is never stored or shown again.

    Agent keys may hold ``ingest`` and ``gate`` only: an agent can read its
    gate and send spans, never act on a gate.
    """
    if (agent is None) == (user is None):
        raise ValidationError("a key belongs to exactly one agent or one user")
    valid = set(ApiKeyScope.values)
    unknown = set(scopes) - valid
    if unknown or not scopes:
        raise ValidationError(f"scopes must be some of {', '.join(sorted(valid))}")
    if agent is not None and ApiKeyScope.API in scopes:
        raise ValidationError("an agent key cannot have the 'api' scope")
    raw, lookup, key_hash = ApiKey.generate()
    key = ApiKey.objects.create(
        name=name, lookup=lookup, key_hash=key_hash, agent=agent, user=user, scopes=sorted(set(scopes))
    )
    return key, raw
