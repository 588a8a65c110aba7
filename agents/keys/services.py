"""Writes for API keys: people's keys act as the person, agents' keys read their gate and send spans."""

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, ApiKey, ApiKeyScope


@transaction.atomic
def api_key_create(
    *, agent: Agent | None = None, user: User | None = None, scopes: list[str], name: str = ""
) -> tuple[ApiKey, str]:
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
