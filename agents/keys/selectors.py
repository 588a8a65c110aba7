"""Reads of API keys: the bearer value to its live key, with a short cache for bursts and a Redis copy
that lets agents keep sending spans while PostgreSQL is down (ingest spools them)."""

import hmac
import json
import logging
import time

from django.db import InterfaceError, OperationalError, models

from agents.models import Agent, ApiKey
from core.redis import get_redis

logger = logging.getLogger(__name__)

# Keys resolved in the last few seconds, by hash: ingest and gate reads come in bursts,
# and one query per request is a measurable share of ingest's CPU. A revoked key
# stops working within API_KEY_CACHE_SECONDS.
API_KEY_CACHE_SECONDS = 5.0
_key_cache: dict[str, tuple[float, ApiKey]] = {}

# While PostgreSQL is down, an agent key seen in the last hour is still recognised from this copy
# (revoking a key deletes it), so its spans are spooled rather than refused. People's keys are not
# kept: what they do needs the database anyway.
REDIS_KEY = "firebreak:apikey:{digest}"
REDIS_COPY_SECONDS = 3600


def api_key_resolve(*, raw: str) -> ApiKey | None:
    """The live key for a raw bearer value, or None. Constant-time on the hash.

    With PostgreSQL unreachable, an agent key comes from its Redis copy (unsaved objects: enough to
    name the agent and check scopes); a person's key then raises the database error (a 503).
    """
    if not raw.startswith(ApiKey.PREFIX):
        return None
    digest = ApiKey.hash(raw)
    now = time.monotonic()
    cached = _key_cache.get(digest)
    if cached and cached[0] > now:
        return cached[1]
    lookup = raw[len(ApiKey.PREFIX) :].split("_", 1)[0]
    try:
        key = ApiKey.objects.select_related("agent", "user").filter(lookup=lookup, revoked_at__isnull=True).first()
    except (OperationalError, InterfaceError):
        key = _from_redis(digest)
        if key is None:
            raise
        return key
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        return None
    if len(_key_cache) > 10_000:
        _key_cache.clear()
    _key_cache[digest] = (now + API_KEY_CACHE_SECONDS, key)
    if key.agent is not None:
        api_key_copy_put(digest=digest, key=key)
    return key


def api_key_cache_clear() -> None:
    _key_cache.clear()


def api_key_copy_forget(*, key: ApiKey) -> None:
    """Delete the key's Redis copy (on revocation); a Redis error is logged, the copy then expires in an hour."""
    try:
        get_redis().delete(REDIS_KEY.format(digest=key.key_hash))
    except Exception:
        logger.exception("could not delete the Redis copy of revoked key %s", key.lookup)


def api_key_copy_put(*, digest: str, key: ApiKey) -> None:
    """Keep the agent key's Redis copy (an hour), so it is recognised while PostgreSQL is down."""
    assert key.agent is not None
    copy = {"id": key.pk, "lookup": key.lookup, "scopes": key.scopes, "agent": [key.agent.pk, key.agent.slug]}
    try:
        get_redis().set(REDIS_KEY.format(digest=digest), json.dumps(copy), ex=REDIS_COPY_SECONDS)
    except Exception:  # Redis down: the database has the key; nothing is lost but the fallback
        logger.debug("could not copy key %s to Redis", key.lookup)


def _from_redis(digest: str) -> ApiKey | None:
    try:
        raw = get_redis().get(REDIS_KEY.format(digest=digest))
    except Exception:
        return None
    if raw is None:
        return None
    copy = json.loads(raw)
    agent_pk, slug = copy["agent"]
    key = ApiKey(pk=copy["id"], lookup=copy["lookup"], key_hash=digest, scopes=copy["scopes"], agent_id=agent_pk)
    key.agent = Agent(pk=agent_pk, slug=slug)
    logger.warning("key %s recognised from its Redis copy: PostgreSQL is unreachable", key.lookup)
    return key


def api_key_list() -> list[ApiKey]:
    """Every key, people's and agents', live ones first, newest first (for the /keys/ page)."""
    return list(
        ApiKey.objects.select_related("agent", "user").order_by(
            models.F("revoked_at").asc(nulls_first=True), "-created_at", "-id"
        )
    )


def api_key_get(*, lookup: str) -> ApiKey:
    """Raises ApiKey.DoesNotExist."""
    return ApiKey.objects.select_related("agent", "user").get(lookup=lookup)
