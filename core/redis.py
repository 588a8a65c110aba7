"""One shared Redis client per process for the gate, pub/sub and caches."""

from functools import cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


def redis_url_with_db(url: str, db: int) -> str:
    """The same server's URL selecting logical database ``db``: ``?db=`` for unix sockets, ``/db`` for TCP."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"]
    if parts.scheme == "unix":  # urlunsplit would drop the empty authority
        return f"unix://{parts.netloc}{parts.path}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def gate_redis_url() -> str:
    """The URL of the gate's Redis database; also what an SDK uses to read gates directly.

    REDIS_URL's own database, unless FIREBREAK_REDIS_DB names another (tests use their own).
    redis-py lets a database in the URL win over a ``db=`` argument, so the choice is made here.
    """
    if settings.FIREBREAK_REDIS_DB is None:
        return settings.REDIS_URL
    return redis_url_with_db(settings.REDIS_URL, settings.FIREBREAK_REDIS_DB)


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(gate_redis_url(), socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


@cache
def get_redis_once() -> redis.Redis:
    """The same database, for work that has a way round Redis (the detection stash): each command is tried
    once, within 0.5 s, instead of ``get_redis``'s retries (3 s with Redis down), which would slow the caller."""
    return redis.Redis.from_url(
        gate_redis_url(), socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
