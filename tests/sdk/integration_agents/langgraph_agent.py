"""A real LangGraph agent behind FirebreakCallbackHandler, driven by a scripted chat model (no network).

Run with var/venvs/langgraph's python: ``langgraph_agent.py <agent-slug> <scenario>``, with FIREBREAK_URL,
FIREBREAK_API_KEY and FIREBREAK_GATE_PUBLIC_KEY set. Prints one JSON object a line:
``{"event": "model", "turn": n}`` as the model answers (with ``"waiting": true`` when it waits for a line on
stdin before answering), ``{"event": "tool", "name", "calls"}`` each time a tool really runs, then
``{"event": "done", ...}`` or ``{"event": "stopped", "error", "reason", ...}`` with the tools' call counts.

Scenarios: ``normal`` (lookup_order, send_email, answer), ``async`` (the same through ``ainvoke``), ``pause``
(as ``kill``), ``kill`` (the model waits before its second
answer, a lookup_order call: the test kills the agent meanwhile), ``refused`` (the model calls drop_tables,
a tool outside the agent's allowed_tools), ``budget`` (lookup_order three times, 60 tokens a model call).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from typing import Any

from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.langgraph import FirebreakCallbackHandler, guard_tools
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

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
        {"answer": "never reached"},
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
    print(json.dumps({"scenario": SCENARIO, **fields}), flush=True)


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


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script: a tool call or a final answer per turn, 40 + 20 tokens each."""

    script: list[dict[str, Any]]
    turn: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        step = self.script[self.turn]
        self.turn += 1
        say(event="model", turn=self.turn, waiting=bool(step.get("wait")))
        if step.get("wait"):
            sys.stdin.readline()  # the test changes the gate, then lets the model answer
        usage = {"input_tokens": 40, "output_tokens": 20, "total_tokens": 60}
        meta = {"model_name": "scripted-1", "finish_reason": "tool_calls" if "tool" in step else "stop"}
        if "tool" in step:
            call = {"name": step["tool"], "args": step["args"], "id": f"call-{self.turn}", "type": "tool_call"}
            message = AIMessage(content="", tool_calls=[call], usage_metadata=usage, response_metadata=meta)
        else:
            message = AIMessage(content=step["answer"], usage_metadata=usage, response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=message)])


def build_graph(script: list[dict[str, Any]], gate: Gate, session: str) -> Any:
    model = ScriptedChatModel(script=script)
    tools = guard_tools([lookup_order, send_email, drop_tables], gate, session=session, user="user-42")

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    graph.add_edge("agent", END)
    return graph.compile()


def run(slug: str, scenario: str, gate: Gate, tracer: Tracer) -> int:
    """One framework run of the scenario's script, with a fresh handler; its outcome as the last line."""
    CALLS.clear()
    handler = FirebreakCallbackHandler(gate, tracer, session=session_of(scenario), user="user-42", name="refund-run")
    graph = build_graph(SCRIPTS["normal" if scenario == "async" else scenario], gate, session_of(scenario))
    inputs: Any = {"messages": [("user", "Please refund order 42")]}
    try:
        if scenario == "async":  # the same run through ainvoke, its session LangGraph's thread_id
            handler = FirebreakCallbackHandler(gate, tracer, user="user-42", name="refund-run")
            config: Any = {"callbacks": [handler], "configurable": {"thread_id": "thread-9"}}
            result = asyncio.run(graph.ainvoke(inputs, config=config))
        else:
            result = graph.invoke(inputs, config={"callbacks": [handler]})
    except FirebreakStop as stop:
        tracer.flush(timeout=10)
        trace_id = handler.last_run.trace_id if handler.last_run else None
        reason = getattr(stop, "reason", "") or getattr(stop, "limit", "")
        say(
            event="stopped", error=type(stop).__name__, reason=reason, message=str(stop), calls=CALLS, trace_id=trace_id
        )
        return 3
    tracer.flush(timeout=10)
    trace_id = handler.last_run.trace_id if handler.last_run else None
    say(event="done", answer=result["messages"][-1].content, calls=CALLS, trace_id=trace_id)
    return 0


def main() -> int:
    """``langgraph_agent.py <slug> <scenario>[,<scenario>...]``: the scenarios one after the other (one
    process: the framework's import is the slow part); the exit status is the last one's."""
    global SCENARIO
    slug, scenarios = sys.argv[1], sys.argv[2].split(",")
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
