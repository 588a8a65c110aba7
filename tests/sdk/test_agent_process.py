"""A kill published from outside stops a separate agent process that is busy looping on gate.check()."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import AGENT, gate_doc, wait_subscribed

SCRIPT = Path(__file__).with_name("agent_loop.py")


@pytest.mark.parametrize(
    "max_staleness",
    [
        pytest.param(1.0, id="default-staleness"),
        pytest.param(60.0, id="subscription-only"),  # re-reads never happen in time: the publish must do it
    ],
)
def test_a_published_kill_stops_a_looping_agent_process_before_any_re_read(redis_client, redis_url, put, max_staleness):
    put(gate_doc("active", version=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    env["FIREBREAK_REDIS_URL"] = redis_url
    env["FIREBREAK_GATE_PUBLIC_KEY"] = os.environ["FIREBREAK_GATE_PUBLIC_KEY"]
    agent = subprocess.Popen(
        [sys.executable, str(SCRIPT), AGENT, str(max_staleness)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert agent.stdout.readline().strip() == "ready"
        wait_subscribed(redis_client)
        time.sleep(0.1)
        assert agent.poll() is None, "the agent stopped before the kill"

        put(gate_doc("killed", version=2, reason="looping on refunds", changed_by="alice"))
        # Subscription-only re-reads after 60 s: stopping within this wait, only the publish can have done it.
        # How fast (milliseconds) is bench/gate.py's figure; a bound here would measure the machine's load.
        agent.wait(timeout=20)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()

    stderr = agent.stderr.read()
    assert agent.returncode == 1
    assert (
        stderr.strip().splitlines()[-1].endswith("AgentKilled: refund-agent was killed by alice: looping on refunds")
    ), stderr
