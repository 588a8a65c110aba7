"""The gate server (uvicorn, as `make run` serves it): signed reads, the SSE stream, and everything else passed on."""

import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from django.core.asgi import get_asgi_application
from django.db import connection

from agents import services
from agents.gate_server import GateServer
from agents.keys.services import api_key_create, api_key_revoke
from agents.signing import document_verify, public_key_text
from core.actors import Actor

pytestmark = pytest.mark.django_db(transaction=True)


class RunningServer:
    """uvicorn in a thread of the test process, so it reads the test database; its own event loop."""

    def __init__(self, app: GateServer) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "RunningServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.server.started and self.app.listening.is_set()):
            if time.monotonic() > deadline:
                raise RuntimeError("the gate server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        # The server's worker threads keep their database connections; end them so the test
        # database can be dropped (a server process would keep them, CONN_MAX_AGE).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


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


class Events:
    """The ``event: gate`` documents of one open stream, read in a thread."""

    def __init__(self, url: str, key: str) -> None:
        self.docs: list[dict] = []
        self.closed = threading.Event()
        self.status: int | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, key), daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "the stream did not answer"

    def _read(self, url: str, key: str) -> None:
        try:
            with httpx.stream("GET", url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as response:
                self.status = response.status_code
                self._ready.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.docs.append(json.loads(line[6:]))
        except httpx.HTTPError:
            pass
        finally:
            self._ready.set()
            self.closed.set()

    def wait_for(self, predicate, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for doc in self.docs:
                if predicate(doc):
                    return doc
            time.sleep(0.01)
        raise AssertionError(f"no such document in {self.docs}")


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
