"""The gate server (uvicorn, as `make run` serves it): signed reads, the SSE stream, and everything else passed on."""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from django.apps import apps
from django.core.asgi import get_asgi_application

from agents import services
from agents.gate_server import GateServer
from agents.keys.services import api_key_create, api_key_revoke
from agents.signing import document_verify, public_key_text
from core.actors import Actor
from core.roles import roles_seed

from .gate_server_thread import Events, RunningServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _roles():
    """Transactional tests flush the tables after each test, the seeded role groups with them: put them back."""
    roles_seed(apps)


@pytest.fixture
def gate_server() -> Iterator[RunningServer]:
    with RunningServer(GateServer(get_asgi_application())) as server:
        yield server


@pytest.fixture
def agent(make_agent):
    # A slug of its own: on a shared Redis other test workers publish on gate channels too.
    return make_agent(f"stream-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def agent_key(agent):
    return api_key_create(agent=agent, scopes=["ingest", "gate"])[1]


def test_the_stream_sends_the_signed_document_then_each_change(gate_server, agent, agent_key, responder):
    events = Events(f"{gate_server.url}/api/v1/agents/{agent.slug}/gate/stream", agent_key)
    assert events.status == 200
    first = events.wait_for(lambda d: d["state"] == "active")
    assert document_verify(first, public_key_text())
    services.agent_kill(agent=agent, actor=Actor.person(responder), reason="runaway loop")
    killed = events.wait_for(lambda d: d["state"] == "killed")
    assert killed["reason"] == "runaway loop" and killed["version"] > first["version"]
    assert document_verify(killed, public_key_text())


def test_revoking_the_key_closes_its_stream(gate_server, agent, agent_key):
    events = Events(f"{gate_server.url}/api/v1/agents/{agent.slug}/gate/stream", agent_key)
    events.wait_for(lambda d: True)
    key = agent.api_keys.get()
    api_key_revoke(key=key, actor=Actor.system("tests"))
    assert events.closed.wait(5)
    again = httpx.get(
        f"{gate_server.url}/api/v1/agents/{agent.slug}/gate/stream",
        headers={"Authorization": f"Bearer {agent_key}"},
        timeout=5,
    )
    assert again.status_code == 401


def test_reads_are_signed_with_a_content_etag(gate_server, agent, agent_key):
    url = f"{gate_server.url}/api/v1/agents/{agent.slug}/gate"
    auth = {"Authorization": f"Bearer {agent_key}"}
    first = httpx.get(url, headers=auth, timeout=5)
    assert first.status_code == 200 and first.headers["server"] == "uvicorn"
    assert document_verify(first.json(), public_key_text())
    again = httpx.get(url, headers={**auth, "If-None-Match": first.headers["etag"]}, timeout=5)
    assert again.status_code == 304


def test_an_agent_key_reads_only_its_own_gate(gate_server, agent, agent_key, make_agent):
    other = make_agent(f"other-{uuid.uuid4().hex[:8]}")
    auth = {"Authorization": f"Bearer {agent_key}"}
    for path in ("gate", "gate/stream"):
        response = httpx.get(f"{gate_server.url}/api/v1/agents/{other.slug}/{path}", headers=auth, timeout=5)
        assert response.status_code == 403
    wrong = httpx.get(
        f"{gate_server.url}/api/v1/agents/{agent.slug}/gate", headers={"Authorization": "Bearer fbk_nope"}, timeout=5
    )
    assert wrong.status_code == 401


def test_everything_else_goes_to_the_web_app(gate_server):
    assert httpx.get(f"{gate_server.url}/healthz", timeout=5).json()["status"] == "ok"
    assert httpx.get(f"{gate_server.url}/", timeout=5).status_code == 302  # the login page, from Django


def test_streams_close_and_new_ones_wait_when_redis_is_lost(private_redis, agent, agent_key):
    app = GateServer(get_asgi_application(), redis_url=private_redis.url)
    with RunningServer(app) as server:
        url = f"{server.url}/api/v1/agents/{agent.slug}/gate/stream"
        events = Events(url, agent_key)
        events.wait_for(lambda d: True)
        private_redis.kill()
        assert events.closed.wait(5), "a stream that can no longer hear a kill stayed open"
        refused = httpx.get(url, headers={"Authorization": f"Bearer {agent_key}"}, timeout=5)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        # Reads still answer, from PostgreSQL.
        read = httpx.get(url.removesuffix("/stream"), headers={"Authorization": f"Bearer {agent_key}"}, timeout=5)
        assert read.status_code == 200 and document_verify(read.json(), public_key_text())
