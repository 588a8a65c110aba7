"""/healthz when a store goes down: each test stops a server of its own, never the shared ones."""

import pytest
from django.db.utils import ConnectionHandler

import core.views
from core.redis import get_redis

pytestmark = pytest.mark.slow


def test_healthz_answers_503_degraded_when_redis_is_killed(client, db, settings, private_redis):
    settings.REDIS_URL = private_redis.url
    get_redis.cache_clear()
    assert client.get("/healthz").json() == {"status": "ok", "postgres": "ok", "redis": "ok"}

    private_redis.kill()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "postgres": "ok", "redis": "error: ConnectionError"}


def test_healthz_answers_503_degraded_when_postgresql_is_killed(client, db, monkeypatch, private_postgres):
    handler = ConnectionHandler({"default": private_postgres.settings_dict()})
    monkeypatch.setattr(core.views, "connection", handler["default"])
    try:
        assert client.get("/healthz").json() == {"status": "ok", "postgres": "ok", "redis": "ok"}

        private_postgres.kill()
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "degraded", "postgres": "error: OperationalError", "redis": "ok"}
    finally:
        handler.close_all()
