"""The budget against a separate agent process: the freeze lets the run in flight drain and refuses new ones,
unfreeze gives back the caps as they were, and the daily cost cap crossed by ingested spend pauses the agent."""

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from agents import services
from agents.models import Agent, AuditAction, AuditEntry, GateState
from core.actors import Actor
from core.redis import gate_redis_url
from incidents.detection.runner import detect_batch
from traces.models import Trace
from traces.services import trace_ingest
from traces.synthetic import trajectory_spans

SCRIPT = Path(__file__).with_name("budget_agent.py")


class AgentProcess:
    def __init__(self, slug: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), slug, gate_redis_url()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.ask_line() == "ready", self.proc.stderr.read() if self.proc.stderr else ""

    def ask_line(self, command: str | None = None) -> str:
        assert self.proc.stdin and self.proc.stdout
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def ask(self, command: str) -> dict:
        answer = self.ask_line(command)
        assert answer.startswith("ok "), answer
        return json.loads(answer[3:])

    def until(self, command: str, prefix: str, timeout: float = 3.0) -> str:
        """Repeat ``command`` until its answer starts with ``prefix`` (the process hears a change by subscription)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.ask_line(command)
            if answer.startswith(prefix):
                return answer
            assert time.monotonic() < deadline, f"{command!r} still answers {answer!r}"
            time.sleep(0.02)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def spawn():
    started: list[AgentProcess] = []

    def start(slug: str) -> AgentProcess:
        started.append(AgentProcess(slug))
        return started[-1]

    yield start
    for process in started:
        process.close()


def test_a_freeze_drains_the_run_in_flight_refuses_a_new_one_and_unfreeze_gives_back_the_caps(
    transactional_db, make_agent, make_spans, ingest, responder, spawn
):
    agent = make_agent("drain-bot", session_cost_cap=Decimal("1.00"), daily_cost_cap=Decimal("50"))
    for cost in (0.10, 0.20, 0.30):  # a p50 of 0.20: the old freeze cut runs at it
        ingest(make_spans(agent="drain-bot", steps=[{"kind": "llm", "cost": cost}]))
    process = spawn("drain-bot")
    assert process.ask("begin a")["caps"]["session_cost_cap"] == 1.0
    process.ask("step a 0.30")

    services.agent_budget_freeze(agent=agent, actor=Actor.person(responder), reason="cost spiral")
    refused = process.until("begin b", "BudgetFrozen")
    assert refused == "BudgetFrozen budget frozen: new runs refused for drain-bot"
    drained = process.ask("step a 0.40")  # in flight: goes on under the cap it started with
    assert drained == {"caps": {"session_cost_cap": 1.0, "session_token_cap": None, "session_step_cap": None},
                       "spent": 0.7}  # fmt: skip
    assert process.ask_line("step a 0.40").startswith("BudgetExceeded")  # its own cap still holds
    assert AuditEntry.objects.get(agent=agent, action=AuditAction.BUDGET_FREEZE).actor_label == responder.username

    services.agent_budget_unfreeze(agent=agent, actor=Actor.person(responder), reason="spiral fixed")
    restarted = process.until("begin c", "ok ")
    assert json.loads(restarted[3:])["caps"]["session_cost_cap"] == 1.0
    agent.refresh_from_db()
    assert (agent.session_cost_cap, agent.daily_cost_cap) == (Decimal("1.00"), Decimal("50"))


def test_the_daily_cost_cap_crossed_by_ingested_spans_pauses_the_agent_process(
    transactional_db, make_agent, responder, spawn
):
    agent = make_agent("daily-bot", daily_cost_cap=Decimal("2.00"), session_cost_cap=None)
    process = spawn("daily-bot")
    process.ask("begin a")

    def ingested_run(cost: float) -> int:
        spans = trajectory_spans(
            agent="daily-bot", steps=[{"kind": "llm", "cost": cost / 2}, {"kind": "llm", "cost": cost / 2}]
        )
        trace_ingest(spans=spans)
        pk = Trace.objects.get(trace_id=spans[0].trace_id).pk
        detect_batch(trace_pks=[pk])  # what the worker does with the batch spans_ingested queued
        return pk

    ingested_run(1.50)
    process.ask("step a 0.01")
    assert Agent.objects.get(pk=agent.pk).state == GateState.ACTIVE

    ingested_run(0.90)
    paused = process.until("step a 0.01", "AgentPaused")
    assert "Daily cost cap crossed: spent $2.40 today" in paused and "over the $2.00 cap" in paused
    entry = AuditEntry.objects.get(agent=agent, action=AuditAction.PAUSE)
    assert entry.actor_label == "detector:daily_cost_cap" and "$2.40" in entry.reason
    assert process.ask_line("begin b").startswith("AgentPaused")
