"""Reads of API keys: the bearer value to its live key, with a short cache for bursts."""

import hmac
import time

from agents.models import ApiKey

# Keys resolved in the last few seconds, by hash: ingest and gate reads come in bursts,
# and one query per request is a measurable share of ingest's CPU. A revoked key
# stops working within API_KEY_CACHE_SECONDS.
API_KEY_CACHE_SECONDS = 5.0
_key_cache: dict[str, tuple[float, ApiKey]] = {}


def api_key_resolve(*, raw: str) -> ApiKey | None:
    """The live key for a raw bearer value, or None. Constant-time on the hash."""
    if not raw.startswith(ApiKey.PREFIX):
        return None
    digest = ApiKey.hash(raw)
    now = time.monotonic()
    cached = _key_cache.get(digest)
    if cached and cached[0] > now:
        return cached[1]
    lookup = raw[len(ApiKey.PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("agent", "user").filter(lookup=lookup, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        return None
    if len(_key_cache) > 10_000:
        _key_cache.clear()
    _key_cache[digest] = (now + API_KEY_CACHE_SECONDS, key)
    return key


def api_key_cache_clear() -> None:
    _key_cache.clear()
