"""A real OpenAI Agents SDK agent behind FirebreakRunHooks and its tool guardrail, driven by a scripted Model.

Run with var/venvs/openai-agents' python: ``openai_agents_agent.py <agent-slug> <scenario>``, with
FIREBREAK_URL, FIREBREAK_API_KEY and FIREBREAK_GATE_PUBLIC_KEY set; no network (the model is local and the
SDK's own trace export is off). Prints the same JSON lines as langgraph_agent.py; a tripped tool guardrail
is reported as ``{"event": "stopped", "error": "ToolInputGuardrailTripwireTriggered", "stop": <the stop>}``.

Scenarios: ``normal``, ``kill`` (the model waits on stdin before its second answer), ``refused`` (drop_tables
is rejected by the guardrail, the model is told and answers), ``budget``, ``processor`` (no hooks: the SDK's
own traces through FirebreakTracingProcessor).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from agents.models.interface import Model
from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.openai_agents import FirebreakRunHooks, FirebreakTracingProcessor, guard_tools
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from agents import (
    Agent,
    ModelResponse,
    RunConfig,
    Runner,
    ToolInputGuardrailTripwireTriggered,
    Usage,
    function_tool,
    generation_span,
    set_trace_processors,
    set_tracing_disabled,
)

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
    "processor": [
        {"tool": "lookup_order", "args": {"order_id": "42"}},
        {"answer": "Order 42 is paid."},
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


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    CALLS["lookup_order"] += 1
    say(event="tool", name="lookup_order", calls=CALLS["lookup_order"])
    return f"order {order_id}: $30, paid"


@function_tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    CALLS["send_email"] += 1
    say(event="tool", name="send_email", calls=CALLS["send_email"])
    return "sent"


@function_tool
def drop_tables(table: str) -> str:
    """Drop a table (the agent must never be allowed to)."""
    CALLS["drop_tables"] += 1
    say(event="tool", name="drop_tables", calls=CALLS["drop_tables"])
    return "dropped"


class ScriptedModel(Model):
    """A Model that answers from a script: a function call or a message per turn, 40 + 20 tokens each."""

    def __init__(self, script: list[dict[str, Any]]) -> None:
        self.script = script
        self.turn = 0
        self.model = "scripted-1"

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        step = self.script[self.turn]
        self.turn += 1
        say(event="model", turn=self.turn, waiting=bool(step.get("wait")))
        if step.get("wait"):
            sys.stdin.readline()  # the test changes the gate, then lets the model answer
        output: list[Any]
        if "tool" in step:
            output = [
                ResponseFunctionToolCall(
                    type="function_call",
                    id=f"fc-{self.turn}",
                    call_id=f"call-{self.turn}",
                    name=step["tool"],
                    arguments=json.dumps(step["args"]),
                    status="completed",
                )
            ]
        else:
            text = ResponseOutputText(type="output_text", text=step["answer"], annotations=[])
            output = [
                ResponseOutputMessage(
                    type="message", id=f"msg-{self.turn}", role="assistant", status="completed", content=[text]
                )
            ]
        usage = Usage(requests=1, input_tokens=40, output_tokens=20, total_tokens=60)
        # A generation span, as the SDK's own chat-completions model records one (a no-op while tracing is off)
        with generation_span(model=self.model, input=[{"role": "user", "content": "Please refund order 42"}]) as span:
            span.span_data.output = [item.model_dump() for item in output]
            span.span_data.usage = {"input_tokens": 40, "output_tokens": 20}
        return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the scripted model does not stream")


def run_traced_only(tracer: Tracer) -> int:
    """The ``processor`` scenario: no hooks; the Agents SDK's own tracing, sent by FirebreakTracingProcessor."""
    processor = FirebreakTracingProcessor(tracer)
    set_trace_processors([processor])  # in place of the SDK's exporter to OpenAI: no network
    set_tracing_disabled(False)
    agent = Agent(name="refunds", instructions="Refund orders.", model=ScriptedModel(SCRIPTS["processor"]),
                  tools=[lookup_order])  # fmt: skip
    config = RunConfig(group_id="conv-7", trace_metadata={"user_id": "user-42"})
    result = Runner.run_sync(agent, "Is order 42 paid?", run_config=config)
    set_tracing_disabled(True)
    tracer.flush(timeout=10)
    trace_id = processor.last_run.trace_id if processor.last_run else None
    say(event="done", answer=result.final_output, calls=CALLS, trace_id=trace_id)
    return 0


def run(slug: str, scenario: str, gate: Gate, tracer: Tracer) -> int:
    """One framework run of the scenario's script, with fresh hooks; its outcome as the last line."""
    CALLS.clear()
    if scenario == "processor":
        return run_traced_only(tracer)
    hooks = FirebreakRunHooks(gate, tracer, session=session_of(scenario), user="user-42", name="refund-run")
    agent = Agent(
        name="refunds",
        instructions="Refund orders.",
        model=ScriptedModel(SCRIPTS[scenario]),
        tools=guard_tools([lookup_order, send_email, drop_tables], hooks),
    )
    stop: Any = None
    try:
        result = Runner.run_sync(agent, "Please refund order 42", hooks=hooks)
    except ToolInputGuardrailTripwireTriggered as tripped:  # the framework's own cancellation of the run
        stop, error = tripped.output.output_info, type(tripped).__name__
    except FirebreakStop as raised:
        stop, error = raised, type(raised).__name__
    tracer.flush(timeout=10)
    trace_id = hooks.last_run.trace_id if hooks.last_run else None
    if stop is not None:
        reason = getattr(stop, "reason", "") or getattr(stop, "limit", "")
        say(event="stopped", error=error, stop=type(stop).__name__, reason=reason, message=str(stop), calls=CALLS,
            trace_id=trace_id)  # fmt: skip
        return 3
    say(event="done", answer=result.final_output, calls=CALLS, trace_id=trace_id)
    return 0


def main() -> int:
    """``openai_agents_agent.py <slug> <scenario>[,<scenario>...]``: the scenarios one after the other (one
    process: the framework's import is the slow part); the exit status is the last one's."""
    global SCENARIO
    slug, scenarios = sys.argv[1], sys.argv[2].split(",")
    set_tracing_disabled(True)  # the SDK's own trace export (to OpenAI) is off: no network
    # max_staleness=0: every check reads the gate, so the check right after the test's kill sees it (the test
    # server has no gate stream to push it); timeout=5: the test server is slow on a loaded machine
    gate = Gate.from_env(slug, max_staleness=0.0, subscribe=False, timeout=5.0)
    tracer = Tracer.from_env(slug, flush_interval=0.05)
    status = 0
    for SCENARIO in scenarios:
        status = run(slug, SCENARIO, gate, tracer)
        if SCENARIO == "pause":
            sys.stdin.readline()  # the test resumes the agent, then lets the next scenario start
    return status


if __name__ == "__main__":
    sys.exit(main())
