"""What a framework integration adds to each model and tool call, and how fast a kill stops the next tool call.

Usage: .venv/bin/python bench/integrations.py [--rounds 30] [--turns 20] [--kills 30]   (after
``make integration-venvs``)

For each framework in var/venvs (langgraph, openai-agents, pydantic-ai) a child process under that venv's
python runs a real agent of the framework with a scripted local model that asks for ``--turns`` tool calls
and then answers, ``--rounds`` times with the integration and ``--rounds`` times without, interleaved. The
gate is served by a local HTTP server in the child (a signed document, Ed25519 key made for the run) and the
spans go to a local sink that answers 200, so what is measured is the integration itself: the gate checks
(a held copy, re-read once it is ``max_staleness`` = 1 s old), the budget guard, the span encoding. Figure:
(run with - run without) / (model calls + tool calls), per pair of runs.

Kill: the gate's copy is then read on every check (``max_staleness=0``) and a second thread flips the served
document to killed while the agent loops on tool calls; measured from the flip to the moment the integration
raised at the next check, and the tool bodies that ran after the flip (at most the one whose check passed
just before it: a check that sees the kill stops its call).
This measures the integration's path from a check that sees the kill to the framework's abort, not the
push path (bench/gate_push.py measures that).

The frameworks are imported inside the functions that the child runs: each lives only in its own venv, and
the parent (any python) imports none of them.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("langgraph", "openai-agents", "pydantic-ai")
SLUG = "bench-agent"


# --- the child: a gate server, a span sink, the framework's agent ------------------------------------------------


class GateServer:
    """Serves a signed gate document for SLUG and swallows ingest posts; ``kill()`` flips the document."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._key = Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()
        self.state = "active"
        self.version = 1
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.document()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def document(self) -> bytes:
        from firebreak_sdk.documents import canonical

        doc: dict[str, Any] = {
            "agent": SLUG,
            "state": self.state,
            "reason": "bench kill" if self.state == "killed" else "",
            "disabled_tools": [],
            "allowed_tools": [],
            "budget": {"frozen": False, "session_cost_cap": None, "session_token_cap": None, "session_step_cap": None},
            "version": self.version,
            "epoch": 1,
            "issued_at": int(time.time() * 1000),
        }
        doc["signature"] = base64.b64encode(self._key.sign(canonical(doc))).decode()
        return json.dumps(doc).encode()

    def kill(self) -> None:
        self.version += 1
        self.state = "killed"


CALLS = {"n": 0}


def tool_body(order_id: str) -> str:
    CALLS["n"] += 1
    return f"order {order_id}: paid"


def langgraph_runner(turns: int, gate: Any, tracer: Any) -> Any:
    from firebreak_sdk.integrations.langgraph import FirebreakCallbackHandler
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import StructuredTool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    class Scripted(BaseChatModel):
        turn: int = 0

        @property
        def _llm_type(self) -> str:
            return "scripted"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            self.turn += 1
            usage = {"input_tokens": 40, "output_tokens": 20, "total_tokens": 60}
            if self.turn > turns:
                return ChatResult(generations=[ChatGeneration(message=AIMessage(content="done", usage_metadata=usage))])
            call = {"name": "lookup_order", "args": {"order_id": str(self.turn)}, "id": f"c{self.turn}"}
            message = AIMessage(content="", tool_calls=[call], usage_metadata=usage)
            return ChatResult(generations=[ChatGeneration(message=message)])

    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        return tool_body(order_id)

    tool = StructuredTool.from_function(lookup_order)

    def run(integrated: bool) -> None:
        model = Scripted()

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        graph.add_node("tools", ToolNode([tool]))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        graph.add_edge("agent", END)
        config: Any = {"recursion_limit": 4 * turns + 10}
        if integrated:
            config["callbacks"] = [FirebreakCallbackHandler(gate, tracer, session="s", user="u")]
        graph.compile().invoke({"messages": [("user", "go")]}, config=config)

    return run


def openai_agents_runner(turns: int, gate: Any, tracer: Any) -> Any:
    from firebreak_sdk.integrations.openai_agents import FirebreakRunHooks, guard_tools
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    # the Agents SDK's import name, `agents`, is also Firebreak's app: by name, so the type check does not read it
    sdk: Any = importlib.import_module("agents")
    Agent, ModelResponse, RunConfig, Runner, Usage = sdk.Agent, sdk.ModelResponse, sdk.RunConfig, sdk.Runner, sdk.Usage
    Model: Any = importlib.import_module("agents.models.interface").Model
    function_tool = sdk.function_tool
    sdk.set_tracing_disabled(True)

    class Scripted(Model):
        def __init__(self) -> None:
            self.turn = 0

        async def get_response(self, *args: Any, **kwargs: Any) -> Any:
            self.turn += 1
            usage = Usage(requests=1, input_tokens=40, output_tokens=20, total_tokens=60)
            item: Any
            if self.turn > turns:
                text = ResponseOutputText(type="output_text", text="done", annotations=[])
                item = ResponseOutputMessage(type="message", id="m", role="assistant", status="completed",
                                             content=[text])  # fmt: skip
            else:
                item = ResponseFunctionToolCall(type="function_call", id=f"f{self.turn}", call_id=f"c{self.turn}",
                                                name="lookup_order", arguments=json.dumps({"order_id": str(self.turn)}),
                                                status="completed")  # fmt: skip
            return ModelResponse(output=[item], usage=usage, response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    @function_tool
    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        return tool_body(order_id)

    def run(integrated: bool) -> None:
        hooks = FirebreakRunHooks(gate, tracer, session="s", user="u") if integrated else None
        tools = guard_tools([lookup_order], hooks) if hooks is not None else [lookup_order]
        agent = Agent(name="bench", model=Scripted(), tools=tools)
        Runner.run_sync(agent, "go", hooks=hooks, max_turns=turns + 5, run_config=RunConfig(tracing_disabled=True))

    return run


def pydantic_ai_runner(turns: int, gate: Any, tracer: Any) -> Any:
    from firebreak_sdk.integrations.pydantic_ai import FirebreakCapability
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.usage import RequestUsage, UsageLimits

    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        return tool_body(order_id)

    def run(integrated: bool) -> None:
        turn = 0

        def answer(messages: Any, info: Any) -> ModelResponse:
            nonlocal turn
            turn += 1
            usage = RequestUsage(input_tokens=40, output_tokens=20)
            if turn > turns:
                return ModelResponse(parts=[TextPart("done")], usage=usage)
            part = ToolCallPart(tool_name="lookup_order", args={"order_id": str(turn)}, tool_call_id=f"c{turn}")
            return ModelResponse(parts=[part], usage=usage)

        capabilities = [FirebreakCapability(gate, tracer, session="s", user="u")] if integrated else []
        agent = Agent(FunctionModel(answer), tools=[lookup_order], capabilities=capabilities)
        agent.run_sync("go", usage_limits=UsageLimits(request_limit=turns + 5))

    return run


class Flip:
    """Kills the served gate 50 ms from now, noting when and how many tool calls had run."""

    def __init__(self, server: GateServer) -> None:
        self.server = server
        self.at = 0.0
        self.calls = 0

    def run(self) -> None:
        time.sleep(0.05)
        self.calls = CALLS["n"]
        self.at = time.perf_counter()
        self.server.kill()


RUNNERS = {"langgraph": langgraph_runner, "openai-agents": openai_agents_runner, "pydantic-ai": pydantic_ai_runner}


def child(framework: str, rounds: int, turns: int, kills: int) -> dict[str, Any]:
    from firebreak_sdk import FirebreakStop, Gate, Tracer

    server = GateServer()
    gate = Gate(SLUG, url=server.url, api_key="bench", public_key=server.public_key, subscribe=False)
    tracer = Tracer(SLUG, url=server.url, api_key="bench", max_buffer=1_000_000)
    run = RUNNERS[framework](turns, gate, tracer)
    run(True), run(False)  # warm up both paths
    added: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        run(True)
        with_integration = time.perf_counter() - started
        started = time.perf_counter()
        run(False)
        without = time.perf_counter() - started
        added.append((with_integration - without) / (2 * turns + 1) * 1e6)
    tracer.flush(timeout=30)

    stops: list[float] = []
    after: list[int] = []
    for _ in range(kills):
        server.state, server.version = "active", server.version + 1
        fresh = Gate(SLUG, url=server.url, api_key="bench", public_key=server.public_key, subscribe=False,
                     max_staleness=0.0)  # fmt: skip
        killer_run = RUNNERS[framework](10_000, fresh, tracer)
        flip = Flip(server)
        CALLS["n"] = 0
        threading.Thread(target=flip.run).start()
        try:
            killer_run(True)
        except FirebreakStop:
            stopped = time.perf_counter()
        except Exception as exc:  # the Agents SDK's tripwire carries the stop
            if not isinstance(getattr(getattr(exc, "output", None), "output_info", None), FirebreakStop):
                raise
            stopped = time.perf_counter()
        stops.append((stopped - flip.at) * 1e3)
        after.append(CALLS["n"] - flip.calls)
        fresh.close()
    tracer.close()
    return {"added_us": added, "kill_ms": stops, "calls_after_kill": after, "sent": tracer.sent}


# --- the parent --------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--child", choices=FRAMEWORKS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rounds, args.turns, args.kills)))
        return 0
    var = Path(os.environ.get("FIREBREAK_VAR_DIR") or ROOT / "var")
    print(f"integrations: {args.rounds} interleaved pairs of runs of {args.turns} tool calls; {args.kills} kills")
    for framework in FRAMEWORKS:
        python = var / "venvs" / framework / "bin" / "python"
        if not python.exists():
            print(f"{framework}: no venv at {python.parent.parent}; run `make integration-venvs`")
            return 1
        command = [str(python), __file__, "--child", framework, "--rounds", str(args.rounds), "--turns",
                   str(args.turns), "--kills", str(args.kills)]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        added, kills = result["added_us"], result["kill_ms"]
        print(
            f"{framework}: added per model or tool call p50 {statistics.median(added):.0f} µs, "
            f"p99 {pct(added, 99):.0f} µs; kill flipped → run aborted p50 {statistics.median(kills):.1f} ms, "
            f"p99 {pct(kills, 99):.1f} ms; tool bodies run after the flip (checked before it), max "
            f"{max(result['calls_after_kill'])}; "
            f"spans sent {result['sent']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
