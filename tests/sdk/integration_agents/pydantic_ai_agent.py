"""A real Pydantic AI agent with FirebreakCapability, driven by a FunctionModel that answers from a script.

Run with var/venvs/pydantic-ai's python: ``pydantic_ai_agent.py <agent-slug> <scenario>``, with FIREBREAK_URL,
FIREBREAK_API_KEY and FIREBREAK_GATE_PUBLIC_KEY set; no network. Prints the same JSON lines as
langgraph_agent.py. Scenarios: ``normal``, ``kill`` (the model waits on stdin before its second answer),
``refused`` (drop_tables is skipped with the refusal as its result; the model answers), ``budget``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.pydantic_ai import FirebreakCapability
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

CALLS: Counter[str] = Counter()

SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "normal": [
        {"tool": "lookup_order", "args": {"order_id": "42"}},
        {"tool": "send_email", "args": {"to": "ann@example.com", "body": "Refunded"}},
        {"answer": "Refunded order 42."},
    ],
    "kill": [
        {"tool": "lookup_order", "args": {"order_id": "42"}},
        {"tool": "lookup_order", "args": {"order_id": "43"}, "wait": True},
        {"answer": "never reached"},
    ],
    "pause": [
        {"tool": "lookup_order", "args": {"order_id": "42"}},
        {"tool": "lookup_order", "args": {"order_id": "43"}, "wait": True},
        {"answer": "never reached"},
    ],
    "blocked": [  # run as session conv-blocked, which the test blocks before the process starts
        {"tool": "lookup_order", "args": {"order_id": "42"}},
        {"answer": "never reached"},
    ],
    "refused": [
        {"tool": "drop_tables", "args": {"table": "orders"}},
        {"answer": "I may not drop tables."},
    ],
    "budget": [
        {"tool": "lookup_order", "args": {"order_id": "42"}},
        {"tool": "lookup_order", "args": {"order_id": "43"}},
        {"tool": "lookup_order", "args": {"order_id": "44"}},
        {"answer": "never reached"},
    ],
}


SCENARIO = ""


def session_of(scenario: str) -> str:
    return "conv-blocked" if scenario == "blocked" else "conv-7"


def say(**fields: Any) -> None:
    print(json.dumps({"scenario": SCENARIO, **fields}, default=str), flush=True)


def lookup_order(order_id: str) -> str:
    """Look an order up."""
    CALLS["lookup_order"] += 1
    say(event="tool", name="lookup_order", calls=CALLS["lookup_order"])
    return f"order {order_id}: $30, paid"


def send_email(to: str, body: str) -> str:
    """Send an email."""
    CALLS["send_email"] += 1
    say(event="tool", name="send_email", calls=CALLS["send_email"])
    return "sent"


def drop_tables(table: str) -> str:
    """Drop a table (the agent must never be allowed to)."""
    CALLS["drop_tables"] += 1
    say(event="tool", name="drop_tables", calls=CALLS["drop_tables"])
    return "dropped"


def scripted(script: list[dict[str, Any]]) -> FunctionModel:
    """A FunctionModel answering from the script: a tool call or a text per turn, 40 + 20 tokens each."""
    turn = 0

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal turn
        step = script[turn]
        turn += 1
        say(event="model", turn=turn, waiting=bool(step.get("wait")))
        if step.get("wait"):
            sys.stdin.readline()  # the test changes the gate, then lets the model answer
        usage = RequestUsage(input_tokens=40, output_tokens=20)
        if "tool" in step:
            part: Any = ToolCallPart(tool_name=step["tool"], args=step["args"], tool_call_id=f"call-{turn}")
            return ModelResponse(parts=[part], usage=usage, model_name="scripted-1", finish_reason="tool_call")
        return ModelResponse(
            parts=[TextPart(step["answer"])], usage=usage, model_name="scripted-1", finish_reason="stop"
        )

    return FunctionModel(answer, model_name="scripted-1")


def run(scenario: str, agent: Agent[dict[str, str], str], firebreak: FirebreakCapability, tracer: Tracer) -> int:
    """One run of the shared agent with the scenario's model and session; its outcome as the last line."""
    CALLS.clear()
    try:
        result = agent.run_sync(
            "Please refund order 42", model=scripted(SCRIPTS[scenario]), deps={"session": session_of(scenario)}
        )
    except FirebreakStop as stop:
        tracer.flush(timeout=10)
        trace_id = firebreak.last_run.trace_id if firebreak.last_run else None
        reason = getattr(stop, "reason", "") or getattr(stop, "limit", "")
        say(event="stopped", error=type(stop).__name__, reason=reason, message=str(stop), calls=CALLS,
            trace_id=trace_id)  # fmt: skip
        return 3
    tracer.flush(timeout=10)
    trace_id = firebreak.last_run.trace_id if firebreak.last_run else None
    say(event="done", answer=result.output, calls=CALLS, trace_id=trace_id)
    return 0


def main() -> int:
    """``pydantic_ai_agent.py <slug> <scenario>[,<scenario>...]``: the scenarios one after the other (one
    process: the framework's import is the slow part); the exit status is the last one's."""
    global SCENARIO
    slug, scenarios = sys.argv[1], sys.argv[2].split(",")
    # max_staleness=0: every check reads the gate, so the check right after the test's kill sees it (the test
    # server has no gate stream to push it); timeout=5: the test server is slow on a loaded machine
    gate = Gate.from_env(slug, max_staleness=0.0, subscribe=False, timeout=5.0)
    tracer = Tracer.from_env(slug, flush_interval=0.05)
    # One agent and one capability for every run, as a service would have: each run's session comes from its deps
    firebreak = FirebreakCapability(
        gate, tracer, session=lambda ctx: ctx.deps["session"], user="user-42", name="refund-run"
    )
    agent: Agent[dict[str, str], str] = Agent(
        deps_type=dict, tools=[lookup_order, send_email, drop_tables], capabilities=[firebreak]
    )
    status = 0
    for SCENARIO in scenarios:
        status = run(SCENARIO, agent, firebreak, tracer)
        if SCENARIO == "pause":
            sys.stdin.readline()  # the test resumes the agent, then lets the next scenario start
    return status


if __name__ == "__main__":
    sys.exit(main())
