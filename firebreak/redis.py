"""One shared Redis client per process for the gate, pub/sub and caches."""

from functools import cache

import redis
from django.conf import settings


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        db=settings.FIREBREAK_REDIS_DB,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
    )


def redis_url_with_db(url: str, db: int) -> str:
    """The same server's URL selecting logical database ``db``: ``?db=`` for unix sockets, ``/db`` for TCP."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"]
    if parts.scheme == "unix":  # urlunsplit would drop the empty authority
        return f"unix://{parts.path}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def gate_redis_url() -> str:
    """The URL an SDK uses to read this deployment's gates directly from Redis."""
    return redis_url_with_db(settings.REDIS_URL, settings.FIREBREAK_REDIS_DB)
