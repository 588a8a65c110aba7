"""Writes for API keys: people's keys act as the person, agents' keys read their gate and send spans."""

import logging
import re

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.keys.redis_users import redis_user_delete, redis_user_put
from agents.keys.selectors import api_key_cache_clear, api_key_copy_forget, api_key_copy_put
from agents.models import Agent, ApiKey, ApiKeyScope, AuditAction, AuditEntry
from core import clock
from core.actors import Actor
from core.errors import Conflict
from core.redis import get_redis

logger = logging.getLogger(__name__)

# The gate stream closes the streams of a key named on this channel (its lookup) at once.
REVOKED_CHANNEL = "firebreak:keys-revoked"

INTEGRATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@transaction.atomic
def api_key_create(
    *,
    agent: Agent | None = None,
    user: User | None = None,
    scopes: list[str],
    name: str = "",
    redis: bool = False,
    actor: Actor | None = None,
    integration: str = "",
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw value, which is never stored or shown again.

    Agent keys may hold ``ingest`` and ``gate`` only: an agent can read its gate and send spans,
    never act on a gate. ``redis``: the agent key also gets its own Redis user (read-only on its
    gate key and channel; see ``agents.keys.redis_users``), made before the key is committed, so a
    Redis that refuses leaves no key behind. One audit row (``key_create``) names the key by its
    lookup, never its value; ``actor`` defaults to the command line. Raises ValidationError or
    RedisUserError.

    ``integration``: a key of its own for a monitoring integration (Alertmanager, Grafana, Datadog, a
    webhook), named so; it holds the ``inbound`` scope only and may post inbound alerts, nothing else.
    """
    if agent is None and user is None and not integration.strip():
        raise ValidationError({"integration": "an integration key needs the integration's name"})
    integration = integration.strip()
    if sum((agent is not None, user is not None, bool(integration))) != 1:
        raise ValidationError("a key belongs to exactly one agent, one user or one integration")
    if integration:
        if not INTEGRATION_NAME.fullmatch(integration):
            raise ValidationError(
                {"integration": "an integration's name is 1-100 letters, digits, '.', '_' or '-' (prometheus-prod)"}
            )
        if list(scopes) != [ApiKeyScope.INBOUND.value] or redis:
            raise ValidationError({"scopes": "an integration key holds the 'inbound' scope only"})
    elif ApiKeyScope.INBOUND in scopes:
        raise ValidationError({"scopes": "the 'inbound' scope is for integration keys only"})
    valid = set(ApiKeyScope.values)
    unknown = set(scopes) - valid
    if unknown or not scopes:
        raise ValidationError(f"scopes must be some of {', '.join(sorted(valid))}")
    if agent is not None and ApiKeyScope.API in scopes:
        raise ValidationError("an agent key cannot have the 'api' scope")
    if redis and (agent is None or ApiKeyScope.GATE not in scopes):
        raise ValidationError("only an agent key with the 'gate' scope reads its gate from Redis")
    raw, lookup, key_hash = ApiKey.generate()
    key = ApiKey.objects.create(
        name=name,
        lookup=lookup,
        key_hash=key_hash,
        agent=agent,
        user=user,
        scopes=sorted(set(scopes)),
        redis_access=redis,
        integration=integration,
    )
    who = actor or Actor.system("createapikey")
    AuditEntry.objects.create(
        agent=agent,
        action=AuditAction.KEY_CREATE,
        actor=who.user,
        actor_label=who.label,
        after=_audit_view(key),
    )
    if redis:
        redis_user_put(key)
    if agent is not None:  # an agent's spans are spooled while PostgreSQL is down, even before its first use
        transaction.on_commit(lambda: api_key_copy_put(digest=key_hash, key=key))
    return key, raw


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Actor, reason: str = "") -> ApiKey:
    """Revoke a key: it stops working over HTTP at once in this process and within seconds in others
    (their key cache), its gate streams close, and its Redis user (if any) is deleted, which closes
    the Redis connections it holds. Raises Conflict when it is already revoked.

    A Redis that cannot be told now is told by the gate reconciler later (it deletes the users of
    revoked keys); the key itself is revoked either way.
    """
    locked = ApiKey.objects.select_for_update(of=("self",)).select_related("agent").get(pk=key.pk)
    if locked.revoked_at is not None:
        raise Conflict("this key is already revoked")
    locked.revoked_at = clock.now()
    locked.revoked_by = actor.label
    locked.save(update_fields=["revoked_at", "revoked_by"])
    AuditEntry.objects.create(
        agent=locked.agent,
        action=AuditAction.KEY_REVOKE,
        actor=actor.user,
        actor_label=actor.label,
        reason=reason,
        before=_audit_view(locked),
    )

    def tell_redis() -> None:
        api_key_cache_clear()
        api_key_copy_forget(key=locked)
        try:
            if locked.redis_access:
                redis_user_delete(locked)
            get_redis().publish(REVOKED_CHANNEL, locked.lookup)
        except Exception:
            logger.exception("revoked key %s: Redis not told yet; the gate reconciler will", locked.lookup)

    transaction.on_commit(tell_redis)
    key.refresh_from_db()
    return key


def _audit_view(key: ApiKey) -> dict[str, object]:
    """What an audit row says about a key: never its value or hash."""
    return {
        "lookup": key.lookup,
        "owner": key.agent.slug
        if key.agent is not None
        else key.user.get_username()
        if key.user
        else f"integration:{key.integration}",
        "scopes": list(key.scopes),
        "redis": key.redis_access,
    }
