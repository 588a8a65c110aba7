"""API throttles (core/throttling.py): per key, per person, per key on ingest; gate reads never; open
while Redis is down."""

import json

import pytest
from django.test import Client

from agents.keys.services import api_key_create
from core.throttling import parse_rate, throttle_reset
from traces.models import Trace

INGEST = "/api/v1/ingest"
OTLP = "/v1/traces"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    throttle_reset()
    yield
    throttle_reset()


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.FIREBREAK_THROTTLE_RATES = {"key": "off", "user": "off", "ingest": "off", **rates}

    return set_rates


def bearer(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def native_batch(n):
    span = {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "name": "invoke_agent support",
        "start_time": "2026-11-20T10:00:00Z",
        "end_time": "2026-11-20T10:00:02Z",
        "kind": "agent",
    }
    return json.dumps({"spans": [span]})


def ingest(key, n):
    return Client().post(INGEST, data=native_batch(n), content_type="application/json", **bearer(key))


@pytest.fixture
def support(make_agent):
    return make_agent("support")


@pytest.fixture
def agent_key(support):
    return api_key_create(agent=support, scopes=["ingest", "gate"])[1]


def test_ingest_over_the_rate_answers_429_with_retry_after_in_the_error_shape(rates, agent_key):
    rates(ingest="3/min")
    assert [ingest(agent_key, n).status_code for n in range(1, 4)] == [200, 200, 200]
    response = ingest(agent_key, 4)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert set(response.json()) == {"error"} and "throttled" in response.json()["error"]
    assert Trace.objects.count() == 3  # the refused batch wrote nothing


def test_otlp_ingest_over_the_rate_answers_429_with_retry_after(rates, agent_key):
    rates(ingest="1/min")
    body = {"resourceSpans": []}
    first = Client().post(OTLP, data=json.dumps(body), content_type="application/json", **bearer(agent_key))
    assert first.status_code == 200
    second = Client().post(OTLP, data=json.dumps(body), content_type="application/json", **bearer(agent_key))
    assert second.status_code == 429
    assert int(second["Retry-After"]) >= 1
    assert "error" in second.json()


def test_another_key_is_not_affected(rates, agent_key, make_agent):
    rates(ingest="2/min")
    other = api_key_create(agent=make_agent("billing"), scopes=["ingest"])[1]
    for n in range(1, 4):
        ingest(agent_key, n)
    assert ingest(agent_key, 10).status_code == 429
    assert ingest(other, 11).status_code == 200


def test_gate_reads_are_never_throttled(rates, support, agent_key):
    rates(key="2/min", user="2/min", ingest="2/min")
    for _ in range(10):
        response = Client().get("/api/v1/agents/support/gate", **bearer(agent_key))
        assert response.status_code == 200
    assert ingest(agent_key, 1).status_code == 200  # ingest counts on its own, not with the gate reads


def test_api_calls_are_throttled_per_key(rates, responder):
    rates(key="2/min")
    key = api_key_create(user=responder, scopes=["api"])[1]
    other = api_key_create(user=responder, scopes=["api"])[1]
    codes = [Client().get("/api/v1/agents", **bearer(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert Client().get("/api/v1/agents", **bearer(other)).status_code == 200


def test_api_calls_are_throttled_per_person_whatever_they_log_in_with(rates, responder, make_client, make_user):
    rates(user="2/min")
    key = api_key_create(user=responder, scopes=["api"])[1]
    assert Client().get("/api/v1/agents", **bearer(key)).status_code == 200
    session = make_client(responder)
    assert session.get("/api/v1/agents").status_code == 200
    response = session.get("/api/v1/agents")
    assert response.status_code == 429
    assert "Retry-After" in response
    assert make_client(make_user("responder")).get("/api/v1/agents").status_code == 200


def test_a_responders_kill_is_never_throttled(rates, responder, support):
    rates(key="1/min", user="1/min")
    key = api_key_create(user=responder, scopes=["api"])[1]
    Client().get("/api/v1/agents", **bearer(key))
    response = Client().post(
        "/api/v1/agents/support/kill", data={"reason": "looping"}, content_type="application/json", **bearer(key)
    )
    assert response.status_code == 200, response.content


def test_ingest_keeps_writing_to_postgresql_while_redis_is_down(rates, settings, private_redis, agent_key):
    """Throttles fail open: with the throttle's Redis stopped, ingest is neither refused nor slowed."""
    from core.redis import get_redis

    settings.REDIS_URL = private_redis.url
    get_redis.cache_clear()
    throttle_reset()
    rates(ingest="2/min")
    assert [ingest(agent_key, n).status_code for n in (1, 2, 3)] == [200, 200, 429]  # counted there
    private_redis.stop()
    codes = [ingest(agent_key, n).status_code for n in range(4, 10)]
    assert codes == [200] * 6
    assert Trace.objects.count() == 8


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("600/min", (600, 60)), ("20/s", (20, 1)), ("5/10s", (5, 10)), ("100/hour", (100, 3600)), ("off", None)],
)
def test_rates_are_read_as_requests_per_period(rate, parsed):
    assert parse_rate(rate) == parsed
