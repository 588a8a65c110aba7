"""Issue 15's gate fields reach a real agent process through the SDK: the level it answers at, the
versions it is pinned to, and the sessions it must refuse, while the others run."""

import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from agents import containment
from agents.gate import KEY, gate_reconcile
from core import clock
from core.actors import Actor
from core.redis import gate_redis_url, get_redis

SCRIPT = Path(__file__).with_name("ladder_agent.py")


class AgentProcess:
    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
        env["FIREBREAK_GATE_PUBLIC_KEY"] = os.environ["FIREBREAK_GATE_PUBLIC_KEY"]
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def sees(self, timeout: float = 5.0, **expected: object) -> dict:
        """The first line (from now on, or held) in which every expected key has its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the agent never saw {expected}; stderr: {self._stderr()}") from None
            if all(seen.get(k) == v for k, v in expected.items()):
                return seen

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def agent(make_agent):
    return make_agent("ladder-bot")


@pytest.fixture
def agent_process(agent):
    proc = AgentProcess("ladder-bot", gate_redis_url(), "s-bad", "s-good")
    yield proc
    proc.stop()


def test_the_process_answers_by_level_falling_to_the_nearest_lower_handler(agent, agent_process, responder):
    actor = Actor.person(responder)
    agent_process.sees(level="full", handler="run_agent")
    containment.agent_degrade(agent=agent, level="restricted", actor=actor, reason="tool misuse")
    # no handler for "restricted": the nearest lower one that has one, "retrieval"
    agent_process.sees(level="restricted", handler="answer_from_docs")
    containment.agent_degrade(agent=agent, level="keyword", actor=actor)
    agent_process.sees(level="keyword", handler="canned")
    containment.agent_degrade(agent=agent, level="full", actor=actor, reason="fixed")
    agent_process.sees(level="full", handler="run_agent")


def test_the_process_sees_the_pin_and_its_lifting(agent, agent_process, responder):
    actor = Actor.person(responder)
    agent_process.sees(pinned=None)
    containment.agent_rollback(agent=agent, prompt_version="p-41", model_version="m-2", actor=actor, reason="p-42 bad")
    agent_process.sees(pinned={"prompt_version": "p-41", "model_version": "m-2"})
    containment.agent_unpin(agent=agent, actor=actor)
    agent_process.sees(pinned=None)


def test_a_blocked_session_raises_while_another_runs_and_expiry_lifts_it(agent, agent_process, responder):
    actor = Actor.person(responder)
    agent_process.sees(**{"s-bad": "ok", "s-good": "ok"})
    containment.agent_block(agent=agent, kind="session", value="s-bad", ttl_seconds=2, actor=actor, reason="leak")
    agent_process.sees(**{"s-bad": "Blocked", "s-good": "ok", "handler": "run_agent"})
    # the SDK honours the expiry it was given: the block lifts at its time, without a new document
    agent_process.sees(timeout=6, **{"s-bad": "ok", "s-good": "ok"})
    # and the server drops it: the reconciler (beat) republishes without it, once its expiry has passed (read
    # from the row: the SDK may lift it a little early on a loaded machine, when the document reached it late)
    agent.refresh_from_db()
    (expires,) = [datetime.fromisoformat(b["expires_at"]) for b in agent.blocks if b["id"] == "s-bad"]
    with clock.at(max(timezone.now(), expires) + timedelta(seconds=1)):
        gate_reconcile()
    assert json.loads(get_redis().get(KEY.format(slug="ladder-bot")))["blocked"]["sessions"] == []
    agent.refresh_from_db()
    containment.agent_block(agent=agent, kind="user", value="u-1", ttl_seconds=60, actor=actor)
    containment.agent_block(agent=agent, kind="session", value="s-bad", ttl_seconds=60, actor=actor)
    agent_process.sees(**{"s-bad": "Blocked", "s-good": "ok"})
    containment.agent_unblock(agent=agent, kind="session", value="s-bad", actor=actor, reason="contained")
    agent_process.sees(**{"s-bad": "ok", "s-good": "ok"})
