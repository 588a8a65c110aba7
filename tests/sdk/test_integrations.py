"""The framework integrations (firebreak_sdk.integrations) in real agent processes against a real Firebreak.

Each framework runs in its own virtual environment (``make integration-venvs`` builds var/venvs/<framework>:
their pins conflict), so each agent is a separate process started with that venv's python, running a real
agent of that framework driven by a scripted local model (tests/sdk/integration_agents/). The agent has a
key of its own against ``live_server``; a responder kills it through the API between two of its steps.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings

from agents.keys.services import api_key_create
from traces.models import Step, Trace

pytestmark = pytest.mark.slow  # each test starts an agent process and imports its framework (seconds)

SCRIPTS = Path(__file__).with_name("integration_agents")
ALLOWED = ["lookup_order", "send_email"]


def venv_python(framework: str) -> Path:
    """The python of var/venvs/<framework>; a missing venv fails the test with the command that builds it."""
    python = Path(settings.VAR_DIR) / "venvs" / framework / "bin" / "python"
    if not python.exists():
        pytest.fail(f"no virtual environment for {framework} at {python.parent.parent}: run `make integration-venvs`")
    return python


class AgentProcess:
    """An agent script under its framework's venv; its JSON lines are read as they come."""

    def __init__(self, framework: str, script: str, slug: str, scenario: str, *, url: str, key: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "PYTHON", "VIRTUAL_ENV"))}
        env |= {
            "FIREBREAK_URL": url,
            "FIREBREAK_API_KEY": key,
            "FIREBREAK_GATE_PUBLIC_KEY": os.environ["FIREBREAK_GATE_PUBLIC_KEY"],
        }
        self.proc = subprocess.Popen(
            [str(venv_python(framework)), str(SCRIPTS / script), slug, scenario],
            env=env,
            cwd=SCRIPTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def sees(self, timeout: float = 60.0, **expected: Any) -> dict[str, Any]:
        """The first line from now on in which every expected key has its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() < deadline and self.reader.is_alive():
                    continue  # still running: wait on; ended: it will say nothing more
                raise AssertionError(
                    f"the agent never said {expected}; it said {self.seen}; {self._stderr()}"
                ) from None
            self.seen.append(line)
            if all(line.get(k) == v for k, v in expected.items()):
                return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait(self) -> int:
        return self.proc.wait(timeout=60)

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return "stderr: " + self.proc.stderr.read()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def firebreak(live_server, reference_data, make_agent):
    """A real Firebreak and a factory of agents (allowed tools: lookup_order, send_email) with their keys."""

    def agent(slug: str, **kwargs: Any) -> SimpleNamespace:
        registered = make_agent(slug, allowed_tools=ALLOWED, **kwargs)
        _, key = api_key_create(agent=registered, scopes=["ingest", "gate"])
        return SimpleNamespace(slug=slug, agent=registered, key=key)

    return SimpleNamespace(url=live_server.url, agent=agent)


@pytest.fixture
def run_agent(firebreak):
    processes: list[AgentProcess] = []

    def start(framework: str, script: str, slug: str, scenario: str, key: str) -> AgentProcess:
        process = AgentProcess(framework, script, slug, scenario, url=firebreak.url, key=key)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


def steps_of(trace_id: str) -> list[Step]:
    return list(Step.objects.filter(trace__trace_id=trace_id).order_by("started_at"))


# --- one process per framework: a normal run, a refused tool, the budget, then the kill ---------------------------


@dataclass(frozen=True)
class Framework:
    venv: str
    script: str
    finish_reason: str  # the first model call's (a tool call), as the framework reports it
    refusal_ends_run: bool  # the refused call aborts the run (LangGraph), or the model is told and answers
    killed_by: str  # what the process catches when the kill meets the next tool call
    scenarios: str = "normal,blocked,refused,budget,pause,kill"


LANGGRAPH = Framework(
    "langgraph",
    "langgraph_agent.py",
    "tool_calls",
    True,
    "AgentKilled",
    "normal,async,blocked,refused,budget,pause,kill",
)
OPENAI_AGENTS = Framework(
    "openai-agents",
    "openai_agents_agent.py",
    "tool_calls",
    False,
    "ToolInputGuardrailTripwireTriggered",
    scenarios="normal,blocked,refused,budget,processor,pause,kill",
)
PYDANTIC_AI = Framework("pydantic-ai", "pydantic_ai_agent.py", "tool_call", False, "AgentKilled")


def check_framework(framework: Framework, firebreak, run_agent, make_client, responder) -> None:
    # 60 tokens a model call, a cap of 150 a run: the normal run's third call passes, the budget run's fourth not
    agent = firebreak.agent(f"{framework.venv}-bot", session_token_cap=150)
    client = make_client(responder)
    blocked = client.post(
        f"/api/v1/agents/{agent.slug}/block",
        {"session": "conv-blocked", "reason": "leaking data", "ttl_seconds": 600},
        "application/json",
    )
    assert blocked.status_code == 200, blocked.content
    process = run_agent(framework.venv, framework.script, agent.slug, framework.scenarios, agent.key)

    # A normal run: its llm and tool spans land in Firebreak as one trajectory.
    done = process.sees(scenario="normal", event="done")
    assert (done["answer"], done["calls"]) == ("Refunded order 42.", {"lookup_order": 1, "send_email": 1})
    trace = Trace.objects.get(trace_id=done["trace_id"])
    assert (trace.agent.slug, trace.status, trace.session_id, trace.user_id) == (agent.slug, "ok", "conv-7", "user-42")
    assert trace.root_output == "Refunded order 42."
    steps = steps_of(done["trace_id"])
    assert [(s.kind, s.tool_name or s.model) for s in steps if s.kind != "agent"] == [
        ("llm", "scripted-1"),
        ("tool", "lookup_order"),
        ("llm", "scripted-1"),
        ("tool", "send_email"),
        ("llm", "scripted-1"),
    ]
    llm = next(s for s in steps if s.kind == "llm")
    assert (llm.tokens_in, llm.tokens_out, llm.finish_reason) == (40, 20, framework.finish_reason)
    tool = next(s for s in steps if s.tool_name == "lookup_order")
    assert tool.tool_arguments == {"order_id": "42"}
    assert "$30, paid" in json.dumps(tool.output)

    if "async" in framework.scenarios:
        # The same run through the framework's async API: checked, traced, answered alike.
        done = process.sees(scenario="async", event="done")
        assert (done["answer"], done["calls"]) == ("Refunded order 42.", {"lookup_order": 1, "send_email": 1})
        assert [s.kind for s in steps_of(done["trace_id"]) if s.kind != "agent"] == ["llm", "tool"] * 2 + ["llm"]
        assert Trace.objects.get(trace_id=done["trace_id"]).session_id == "thread-9"  # LangGraph's thread_id

    # The session blocked before the process started is refused at its run's first check; the others run.
    refused_session = process.sees(scenario="blocked", event="stopped")
    assert (refused_session["error"], refused_session["calls"]) == ("Blocked", {})
    assert f"session conv-blocked of {agent.slug} is blocked until" in refused_session["message"]

    # A tool outside allowed_tools is refused before it runs, and the refusal is a span.
    refused = process.sees(scenario="refused", event="stopped" if framework.refusal_ends_run else "done")
    assert refused["calls"] == {}
    if framework.refusal_ends_run:
        assert refused["error"] == "ToolNotAllowed"
        assert f"drop_tables is not among {agent.slug}'s allowed tools" in refused["message"]
    else:
        assert refused["answer"] == "I may not drop tables."
    tools = [s for s in steps_of(refused["trace_id"]) if s.kind == "tool"]
    assert [(s.tool_name, s.status, s.attributes.get("firebreak.refused")) for s in tools] == [
        ("drop_tables", "error", "ToolNotAllowed")
    ]

    # The budget guard refuses the model call that the gate's token cap does not leave room for.
    budget = process.sees(scenario="budget", event="stopped")
    assert (budget["error"], budget["reason"]) == ("BudgetExceeded", "session_token_cap")
    assert budget["calls"] == {"lookup_order": 3}
    assert [s.kind for s in steps_of(budget["trace_id"]) if s.kind != "agent"] == ["llm", "tool"] * 3

    if "processor" in framework.scenarios:
        # Without the hooks: the framework's own trace, sent by its tracing processor, is a run in Firebreak.
        traced = process.sees(scenario="processor", event="done")
        assert (traced["answer"], traced["calls"]) == ("Order 42 is paid.", {"lookup_order": 1})
        trace = Trace.objects.get(trace_id=traced["trace_id"])
        assert (trace.status, trace.session_id, trace.user_id) == ("ok", "conv-7", "user-42")
        steps = [s for s in steps_of(traced["trace_id"]) if s.kind != "agent"]
        assert [(s.kind, s.tool_name or s.model) for s in steps] == [
            ("llm", "scripted-1"),
            ("tool", "lookup_order"),
            ("llm", "scripted-1"),
        ]
        assert (steps[0].tokens_in, steps[0].tokens_out) == (40, 20)
        assert (steps[1].tool_arguments, steps[1].status) == ({"order_id": "42"}, "ok")

    # Paused through the API between the model's answer and its tool call: that call never runs, the run
    # stops with the framework's cancellation and the pause's reason; resumed, the agent runs again.
    process.sees(scenario="pause", event="model", turn=2, waiting=True)
    paused = client.post(f"/api/v1/agents/{agent.slug}/pause", {"reason": "checking refunds"}, "application/json")
    assert paused.status_code == 200, paused.content
    process.send("go")
    stopped = process.sees(scenario="pause", event="stopped")
    assert (stopped["error"], stopped.get("stop", stopped["error"])) == (
        framework.killed_by.replace("AgentKilled", "AgentPaused"),
        "AgentPaused",
    )
    assert (stopped["reason"], stopped["calls"]) == ("checking refunds", {"lookup_order": 1})
    resumed = client.post(f"/api/v1/agents/{agent.slug}/resume", {"reason": "refunds are fine"}, "application/json")
    assert resumed.status_code == 200, resumed.content
    process.send("resumed")

    # Killed through the API between the model's answer and the tool call it asks for: that call never runs.
    process.sees(scenario="kill", event="tool", name="lookup_order", calls=1)
    process.sees(scenario="kill", event="model", turn=2, waiting=True)  # its gate check passed; it waits
    killed = make_client(responder).post(
        f"/api/v1/agents/{agent.slug}/kill", {"reason": "refunding everyone"}, content_type="application/json"
    )
    assert killed.status_code == 200, killed.content
    process.send("go")
    stopped = process.sees(scenario="kill", event="stopped")
    assert process.wait() == 3
    assert (stopped["error"], stopped.get("stop", stopped["error"])) == (framework.killed_by, "AgentKilled")
    assert stopped["reason"] == "refunding everyone"
    assert stopped["calls"] == {"lookup_order": 1}
    assert Trace.objects.get(trace_id=stopped["trace_id"]).status == "killed"
    refusals = [s for s in steps_of(stopped["trace_id"]) if s.attributes.get("firebreak.refused")]
    assert [(s.tool_name, s.attributes["firebreak.refused"], s.tool_arguments) for s in refusals] == [
        ("lookup_order", "AgentKilled", {"order_id": "43"})
    ]


def test_langgraph_agent_is_traced_refused_budgeted_and_stopped_by_a_kill(firebreak, run_agent, make_client, responder):
    check_framework(LANGGRAPH, firebreak, run_agent, make_client, responder)


def test_openai_agents_agent_is_traced_refused_budgeted_and_stopped_by_a_kill(
    firebreak, run_agent, make_client, responder
):
    check_framework(OPENAI_AGENTS, firebreak, run_agent, make_client, responder)


def test_pydantic_ai_agent_is_traced_refused_budgeted_and_stopped_by_a_kill(
    firebreak, run_agent, make_client, responder
):
    check_framework(PYDANTIC_AI, firebreak, run_agent, make_client, responder)
