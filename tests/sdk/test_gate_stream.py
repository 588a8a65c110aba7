"""The SDK with only FIREBREAK_URL and its key: the gate stream pushes every change, polling covers its gaps,
and the gate fails closed when both are gone. Against the real gate server (uvicorn in a thread)."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.apps import apps
from django.core.asgi import get_asgi_application
from firebreak_sdk import AgentKilled, Gate, GateUnavailable, ToolDisabled

from agents import services
from agents.gate_server import GateServer
from agents.keys.services import api_key_create
from agents.tests.gate_server_thread import RunningServer
from core.actors import Actor
from core.roles import roles_seed

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _roles():
    """Transactional tests flush the tables after each test, the seeded role groups with them: put them back."""
    roles_seed(apps)


SCRIPT = Path(__file__).with_name("agent_loop.py")


@pytest.fixture
def server():
    with RunningServer(GateServer(get_asgi_application())) as running:
        yield running


@pytest.fixture
def agent(make_agent):
    return make_agent(f"push-{uuid.uuid4().hex[:10]}", allowed_tools=["search", "refund"])


@pytest.fixture
def key(agent):
    return api_key_create(agent=agent, scopes=["ingest", "gate"])[1]


def test_with_only_the_url_changes_arrive_by_stream(server, agent, key, responder):
    # A 60 s window: only the stream can bring the changes in time.
    with Gate(agent.slug, url=server.url, api_key=key, max_staleness=60) as gate:
        gate.check()
        wait_until(lambda: gate.subscribed, timeout=5)
        services.agent_tool_disable(agent=agent, tool="refund", actor=Actor.person(responder), reason="bad refunds")
        wait_until(lambda: "refund" in gate.state["disabled_tools"], timeout=2)
        with pytest.raises(ToolDisabled):
            gate.check(tool="refund")
        services.agent_kill(agent=agent, actor=Actor.person(responder), reason="runaway loop")
        wait_until(lambda: gate.state["state"] == "killed", timeout=2)
        with pytest.raises(AgentKilled, match="runaway loop"):
            gate.check()


def test_a_kill_stops_a_separate_agent_process_over_the_stream(server, agent, key, responder):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    env |= {
        "FIREBREAK_URL": server.url,
        "FIREBREAK_API_KEY": key,
        "FIREBREAK_GATE_PUBLIC_KEY": os.environ["FIREBREAK_GATE_PUBLIC_KEY"],
    }
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), agent.slug, "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        wait_until(lambda: server.app.stream_count() >= 1, timeout=5)
        services.agent_kill(agent=agent, actor=Actor.person(responder), reason="looping on refunds")
        process.wait(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert "AgentKilled" in process.stderr.read()


def test_when_the_stream_and_the_server_are_gone_the_gate_fails_closed(agent, key):
    running = RunningServer(GateServer(get_asgi_application()))
    with running:
        gate = Gate(agent.slug, url=running.url, api_key=key, max_staleness=0.2, stream_silence=1.0)
        gate.check()
        wait_until(lambda: gate.subscribed, timeout=5)
    # The server is gone: the stream ends at once, the held copy ages out, the poll fails.
    wait_until(lambda: not gate.subscribed, timeout=5)
    time.sleep(0.25)
    with pytest.raises(GateUnavailable):
        gate.check()
    gate.close()
