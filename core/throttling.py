"""API throttles: per API key, per person, and per key on ingest, counted in Redis.

Each throttle counts requests in fixed windows (``SET NX EX`` and ``INCR`` in one round trip, so every
web process shares one count). Over the rate the answer is 429 with ``Retry-After`` (the seconds
left in the window) in the API's error shape (``core.api.exception_handler``).

Rates come from ``FIREBREAK_THROTTLE_RATES`` (``"600/min"``; ``"off"`` for none), read per request.
Gate reads are never throttled (their views set no throttles): a kill must always be heard.

When Redis cannot be reached the throttles **fail open**: the request goes through, a warning is
logged, and Redis is left alone for a few seconds, so ingest keeps writing to PostgreSQL at full
speed while Redis is down rather than waiting on its timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core.client_ip import client_ip
from core.redis import gate_redis_url

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes named in the settings: no cycle at run time
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

KEY = "firebreak:throttle:{scope}:{ident}:{window}"
PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400}
# After a Redis error the throttles stand aside this long before trying Redis again.
REDIS_BACKOFF_SECONDS = 5.0
# Short timeouts: a throttle is a courtesy, never worth holding a request for.
SOCKET_TIMEOUT = 0.25

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()
_redis_down_until = 0.0


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"600/min"`` → (600, 60); ``None``, ``""``, ``"off"`` or ``"0"`` → None (not throttled)."""
    if not rate or rate.strip().lower() in {"off", "none", "0"}:
        return None
    count, _, period = rate.partition("/")
    number = "".join(ch for ch in period if ch.isdigit()) or "1"
    unit = period.lstrip("0123456789").strip().lower()
    if unit not in PERIODS:
        raise ValueError(f"unknown throttle period in {rate!r} (use s, min, hour or day)")
    return int(count), int(number) * PERIODS[unit]


def _client() -> redis.Redis:
    url = gate_redis_url()
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.setdefault(
                url,
                redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT),
            )
    return client


def throttle_reset() -> None:
    """Forget the Redis clients and any back-off (tests, after pointing settings at another Redis)."""
    global _redis_down_until
    with _lock:
        _clients.clear()
        _redis_down_until = 0.0


def _count(key: str, ttl: int) -> int | None:
    """This request's number in its window, or None when Redis cannot say (fail open)."""
    global _redis_down_until
    if time.monotonic() < _redis_down_until:
        return None
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.set(key, 0, ex=ttl, nx=True)  # the window's counter expires with it (works on Redis 6)
        pipe.incr(key)
        _, count = pipe.execute()
    except redis.RedisError as exc:
        _redis_down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
        logger.warning("throttles stand aside for %.0f s: Redis unavailable (%s)", REDIS_BACKOFF_SECONDS, exc)
        return None
    return int(count)


class RedisRateThrottle(BaseThrottle):
    """A fixed-window counter per ``ident`` under ``scope``; subclasses say who is counted."""

    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def ident_for(self, request: Request) -> str | None:
        """Who this request counts against, or None when this throttle does not apply to it."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        rates: dict[str, str] = getattr(settings, "FIREBREAK_THROTTLE_RATES", {})
        rate = parse_rate(rates.get(self.scope))
        ident = self.ident_for(request)
        if rate is None or ident is None:
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        count = _count(KEY.format(scope=self.scope, ident=ident, window=window), period + 1)
        if count is None or count <= limit:
            return True
        self._wait = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self._wait


def _key_ident(request: Request) -> str | None:
    lookup: Any = getattr(request.auth, "lookup", None)
    return f"key:{lookup}" if lookup else None


def _person_ident(request: Request) -> str | None:
    user = request.user
    if getattr(user, "is_authenticated", False) and getattr(user, "pk", None) is not None:
        return f"user:{user.pk}"
    return None


class ApiKeyRateThrottle(RedisRateThrottle):
    """Per API key (an agent's or a person's): ``FIREBREAK_THROTTLE_RATES["key"]``."""

    scope = "key"

    def ident_for(self, request: Request) -> str | None:
        return _key_ident(request)


class UserRateThrottle(RedisRateThrottle):
    """Per person, whatever they authenticate with (session or their keys); anonymous callers per
    address: ``FIREBREAK_THROTTLE_RATES["user"]``. Agent keys are counted by ApiKeyRateThrottle only."""

    scope = "user"

    def ident_for(self, request: Request) -> str | None:
        person = _person_ident(request)
        if person is not None:
            return person
        if getattr(request.user, "is_authenticated", False):  # an agent key: not a person
            return None
        return f"ip:{client_ip(request._request)}"


class IngestRateThrottle(RedisRateThrottle):
    """Ingest batches per key (or per person for a session): ``FIREBREAK_THROTTLE_RATES["ingest"]``."""

    scope = "ingest"

    def ident_for(self, request: Request) -> str | None:
        return _key_ident(request) or _person_ident(request)
