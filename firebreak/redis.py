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
