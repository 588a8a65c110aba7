"""firebreak-mcp-gateway as a real process in front of a real MCP server process, driven by the real MCP client,
against a real Firebreak (live_server for ingest and the API, the gate server for the push stream)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from django.core.asgi import get_asgi_application
from django.db import connections
from firebreak_sdk.gateways.mcp import parse_args
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents

from agents import services
from agents.gate_server import GateServer
from agents.keys.services import api_key_create
from agents.tests.gate_server_thread import RunningServer
from core.actors import Actor
from traces.models import Step

from .conftest import free_port, wait_until

SERVER = Path(__file__).with_name("mcp_echo_server.py")
GATEWAY = str(Path(sys.executable).with_name("firebreak-mcp-gateway"))
AGENT = "support-bot"


@pytest.fixture
def gate_server(reference_data):
    with RunningServer(GateServer(get_asgi_application())) as running:
        yield running


@pytest.fixture
def make_firebreak(live_server, gate_server, make_agent):
    """An agent with ``allowed_tools``, its ingest+gate key, and the gateway's environment for it."""

    def make(slug: str, allowed_tools: list[str]) -> SimpleNamespace:
        agent = make_agent(slug, allowed_tools=allowed_tools)
        _, key = api_key_create(agent=agent, scopes=["ingest", "gate"])
        env = {
            "FIREBREAK_URL": live_server.url,
            "FIREBREAK_GATE_URL": gate_server.url,  # the push path: the gate stream
            "FIREBREAK_API_KEY": key,
            "FIREBREAK_GATE_PUBLIC_KEY": os.environ["FIREBREAK_GATE_PUBLIC_KEY"],
        }
        return SimpleNamespace(agent=agent, env=env, gate_server=gate_server)

    return make


@pytest.fixture
def firebreak(make_firebreak):
    """support-bot may call lookup_order and echo, not issue_refund."""
    return make_firebreak(AGENT, ["lookup_order", "echo"])


def text(result: CallToolResult) -> str:
    """The text of a tool result (one text block, as the test server and the gateway's refusals answer)."""
    (block,) = result.content
    assert isinstance(block, TextContent), block
    return block.text


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def calls(count_file: Path) -> list[str]:
    """The tool calls the MCP server actually served, in order."""
    return count_file.read_text().split() if count_file.exists() else []


def run_async(main: Callable[[], Awaitable[None]]) -> None:
    """``anyio.run(main)`` in a thread of its own: the browser tests leave Playwright's event loop running in
    the worker's main thread, where a second loop cannot start. The thread's database connections close after."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            anyio.run(main)
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def through_gateway(env: dict[str, str], *args: str, body: Callable[[ClientSession], Awaitable[None]]) -> None:
    """Start the gateway (``args``: its command line) with the real MCP client over stdio and run ``body``."""

    async def main() -> None:
        params = StdioServerParameters(command=GATEWAY, args=list(args), env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await body(session)

    run_async(main)


@pytest.mark.slow
def test_tools_pass_through_with_a_span_and_a_tool_outside_allowed_tools_is_refused_before_the_call(
    firebreak, tmp_path
):
    count = tmp_path / "calls"

    async def body(session: ClientSession) -> None:
        listed = await session.list_tools()
        assert sorted(t.name for t in listed.tools) == ["echo", "issue_refund", "lookup_order"]
        assert next(t for t in listed.tools if t.name == "lookup_order").input_schema["required"] == ["order_id"]

        result = await session.call_tool("lookup_order", {"order_id": 42})
        assert not result.is_error
        assert text(result) == "order 42: delivered, total $30"

        refused = await session.call_tool("issue_refund", {"order_id": 42, "amount": 30})
        assert refused.is_error
        assert text(refused).startswith("tool issue_refund is not among support-bot's allowed tools")
        assert calls(count) == ["lookup_order"]  # the refund never reached the server

        still = await session.call_tool("echo", {"text": "still here"})  # the refusal stopped that call only
        assert (still.is_error, text(still)) == (False, "still here")

    through_gateway(firebreak.env, "--agent", AGENT, "--", sys.executable, str(SERVER), str(count), body=body)
    assert calls(count) == ["lookup_order", "echo"]

    wait_until(lambda: Step.objects.filter(trace__agent=firebreak.agent, kind="tool").count() == 3, timeout=15)
    steps = {s.tool_name: s for s in Step.objects.filter(trace__agent=firebreak.agent, kind="tool")}
    lookup = steps["lookup_order"]
    assert (lookup.status, lookup.tool_arguments, lookup.output) == (
        "ok",
        {"order_id": 42},
        "order 42: delivered, total $30",
    )
    refund = steps["issue_refund"]
    assert refund.status == "error"
    assert refund.attributes["firebreak.refused"] == "ToolNotAllowed"
    assert refund.tool_arguments == {"order_id": 42, "amount": 30}
    assert len({s.trace_id for s in steps.values()}) == 1  # one run for the gateway session


@pytest.mark.slow
def test_after_a_kill_through_the_api_the_next_call_is_an_error_naming_the_kill_and_never_reaches_the_server(
    make_firebreak, tmp_path, make_client, responder
):
    # The killed agent is one of its own: its killed document stays in the worker's Redis after the test, and a
    # later test's agent of the same name would start out killed.
    firebreak = make_firebreak("killed-bot", ["lookup_order", "echo"])
    count = tmp_path / "calls"

    async def body(session: ClientSession) -> None:
        assert not (await session.call_tool("lookup_order", {"order_id": 1})).is_error
        wait_until(lambda: firebreak.gate_server.app.stream_count() >= 1, timeout=10)  # the gateway listens

        response = await anyio.to_thread.run_sync(
            lambda: make_client(responder).post(
                "/api/v1/agents/killed-bot/kill", {"reason": "looping on refunds"}, content_type="application/json"
            )
        )
        assert response.status_code == 200, response.content
        await anyio.sleep(0.5)  # the push crosses two processes; the bench measures how fast (p99 in README)

        result = await session.call_tool("lookup_order", {"order_id": 2})
        assert result.is_error
        assert text(result) == f"killed-bot was killed by {responder.username}: looping on refunds"
        assert calls(count) == ["lookup_order"]  # the server's count did not move

    through_gateway(firebreak.env, "--agent", "killed-bot", "--", sys.executable, str(SERVER), str(count), body=body)

    wait_until(lambda: Step.objects.filter(trace__agent=firebreak.agent, kind="tool").count() == 2, timeout=15)
    refused = Step.objects.get(trace__agent=firebreak.agent, kind="tool", tool_arguments={"order_id": 2})
    assert refused.attributes["firebreak.refused"] == "AgentKilled"


@pytest.mark.slow
def test_one_server_is_relayed_whole_so_its_resources_reach_the_agent_while_tool_calls_are_checked(
    make_firebreak, tmp_path
):
    """With one server over stdio the gateway relays every message, not only tools: the server's resources
    pass through unchanged, while tools/call is still checked."""
    # An agent of its own: another test's kill of support-bot can outlive it in a shared Redis (CI's pass 2).
    relay = make_firebreak("relay-bot", ["lookup_order", "echo"])
    count = tmp_path / "calls"

    async def body(session: ClientSession) -> None:
        resources = await session.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["orders://policy"]
        (policy,) = (await session.read_resource("orders://policy")).contents
        assert isinstance(policy, TextResourceContents) and policy.text == "Refunds over $100 need a human."
        refused = await session.call_tool("issue_refund", {"order_id": 5, "amount": 500})
        assert refused.is_error and "not among relay-bot's allowed tools" in text(refused)

    through_gateway(relay.env, "--agent", "relay-bot", "--", sys.executable, str(SERVER), str(count), body=body)
    assert calls(count) == []


@pytest.mark.slow
def test_a_tool_call_hidden_in_a_json_rpc_batch_is_checked_like_any_other(make_firebreak, tmp_path):
    """An agent speaking raw JSON-RPC cannot slip a refused call past the gate inside a batch."""
    raw = make_firebreak("raw-bot", ["lookup_order", "echo"])  # its own agent, as above
    count = tmp_path / "calls"
    gateway = subprocess.Popen(
        [GATEWAY, "--agent", "raw-bot", "--", sys.executable, str(SERVER), str(count)],
        env={k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")} | raw.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert gateway.stdin is not None and gateway.stdout is not None

    def send(message: Any) -> None:
        gateway.stdin.write(json.dumps(message).encode() + b"\n")
        gateway.stdin.flush()

    def call(request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        params = {"name": tool, "arguments": arguments}
        return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}

    try:
        client = {"name": "raw", "version": "1"}
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}
        send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        assert json.loads(gateway.stdout.readline())["id"] == 0
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send([call(1, "lookup_order", {"order_id": 1}), call(2, "issue_refund", {"order_id": 1, "amount": 900})])
        answers = json.loads(gateway.stdout.readline())  # the refusal comes first: the gateway answers at once
        assert [a["id"] for a in answers] == [2]
        assert answers[0]["result"]["isError"] is True
        assert "issue_refund is not among raw-bot's allowed tools" in answers[0]["result"]["content"][0]["text"]
    finally:
        gateway.stdin.close()
        gateway.wait(timeout=30)
    assert "issue_refund" not in calls(count)


@pytest.mark.slow
def test_a_server_that_dies_mid_call_answers_that_call_with_an_error_and_the_gateway_exits_with_it(
    make_firebreak, tmp_path
):
    crashy = make_firebreak("crashy-bot", ["lookup_order", "crash"])
    count = tmp_path / "calls"
    answers: list[CallToolResult] = []

    async def body(session: ClientSession) -> None:
        assert not (await session.call_tool("lookup_order", {"order_id": 1})).is_error
        answers.append(await session.call_tool("crash", {}))

    args = ("--agent", "crashy-bot", "--", sys.executable, str(SERVER), str(count), "--crash")
    through_gateway(crashy.env, *args, body=body)
    (crashed,) = answers
    assert crashed.is_error
    assert text(crashed) == "the MCP server behind the gateway exited (code 3) before answering"
    assert calls(count) == ["lookup_order", "crash"]
    wait_until(lambda: Step.objects.filter(trace__agent=crashy.agent, tool_name="crash").exists(), timeout=15)
    step = Step.objects.get(trace__agent=crashy.agent, tool_name="crash")
    assert (step.status, step.error_message) == (
        "error",
        "the MCP server behind the gateway exited (code 3) before answering",
    )


@pytest.mark.slow
def test_two_servers_behind_one_gateway_are_named_name_dot_tool_and_checked_by_those_names(make_firebreak, tmp_path):
    desk = make_firebreak("desk-bot", ["a.lookup_order", "b.echo"])
    orders, crm = tmp_path / "orders", tmp_path / "crm"
    server = f"{sys.executable} {SERVER}"

    async def body(session: ClientSession) -> None:
        names = sorted(t.name for t in (await session.list_tools()).tools)
        assert names == [f"{p}.{t}" for p in ("a", "b") for t in ("echo", "issue_refund", "lookup_order")]
        result = await session.call_tool("b.echo", {"text": "to b"})
        assert (result.is_error, text(result)) == (False, "to b")
        result = await session.call_tool("a.lookup_order", {"order_id": 3})
        assert (result.is_error, text(result)) == (False, "order 3: delivered, total $30")
        refused = await session.call_tool("a.issue_refund", {"order_id": 3, "amount": 5})
        assert refused.is_error and "a.issue_refund is not among desk-bot's allowed tools" in text(refused)

    through_gateway(
        desk.env, "--agent", "desk-bot", "--server", f"a={server} {orders}", "--server", f"b={server} {crm}", body=body
    )
    assert (calls(orders), calls(crm)) == (["lookup_order"], ["echo"])  # each call reached its own server, once


@pytest.mark.slow
def test_over_streamable_http_both_ways_with_a_run_per_session_and_new_runs_refused_when_the_budget_freezes(
    make_firebreak, tmp_path
):
    """The agent reaches the gateway at --listen, and the gateway reaches a server given by URL."""
    http = make_firebreak("http-bot", ["lookup_order"])
    count = tmp_path / "calls"
    server_port, gateway_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    server = subprocess.Popen([sys.executable, str(SERVER), str(count), "--http", str(server_port)], env=env)
    upstream = f"orders=http://127.0.0.1:{server_port}/mcp"
    # The gateway connects to its servers at start and stops, naming one that does not answer: start it once
    # the server listens (on a loaded machine the two raced and the gateway exited).
    wait_until(lambda: listening(server_port), timeout=30, interval=0.1)
    gateway = subprocess.Popen(
        [GATEWAY, "--agent", "http-bot", "--listen", f"127.0.0.1:{gateway_port}", "--server", upstream],
        env=env | http.env,
    )

    def session() -> Any:
        return streamable_http_client(f"http://127.0.0.1:{gateway_port}/mcp")

    async def main() -> None:
        async with session() as (read, write), ClientSession(read, write) as first:
            await first.initialize()
            listed = await first.list_tools()
            assert sorted(t.name for t in listed.tools) == ["echo", "issue_refund", "lookup_order"]  # one server
            result = await first.call_tool("lookup_order", {"order_id": 7})
            assert (result.is_error, text(result)) == (False, "order 7: delivered, total $30")
            refused = await first.call_tool("echo", {"text": "hi"})
            assert refused.is_error and text(refused).startswith("tool echo is not among http-bot's allowed tools")

            services.agent_budget_freeze(agent=http.agent, actor=Actor.system("tests"), reason="cost spiral")
            await anyio.sleep(0.5)  # the push reaches the gateway
            async with session() as (read2, write2), ClientSession(read2, write2) as second:
                await second.initialize()
                new_run = await second.call_tool("lookup_order", {"order_id": 8})
                assert new_run.is_error
                assert text(new_run).startswith("budget frozen: new runs refused for http-bot"), text(new_run)
            in_flight = await first.call_tool("lookup_order", {"order_id": 9})  # a run in flight drains
            assert (in_flight.is_error, text(in_flight)) == (False, "order 9: delivered, total $30")

    try:
        wait_until(lambda: listening(gateway_port), timeout=30, interval=0.1)
        run_async(main)
    finally:
        for process in (gateway, server):
            process.terminate()
            process.wait(timeout=10)
    assert calls(count) == ["lookup_order", "lookup_order"]  # orders 7 and 9; 8 was refused
    wait_until(lambda: Step.objects.filter(trace__agent=http.agent, kind="tool").count() == 4, timeout=15)
    steps = Step.objects.filter(trace__agent=http.agent, kind="tool").select_related("trace")
    frozen = next(s for s in steps if s.tool_arguments == {"order_id": 8})
    assert frozen.attributes["firebreak.refused"] == "BudgetFrozen"
    sessions = {s.trace.session_id for s in steps}  # a run per MCP session, under its Mcp-Session-Id
    assert len(sessions) == 2 and all(sessions)


def test_the_command_line_names_servers_only_when_there_are_several():
    one = parse_args(["--agent", "a", "--", "python", "server.py", "--flag"])
    assert [(u.name, u.command) for u in one.upstreams] == [(None, ("python", "server.py", "--flag"))]
    named_alone = parse_args(["--agent", "a", "--server", "orders=python 'my server.py'"])
    assert [(u.name, u.command) for u in named_alone.upstreams] == [(None, ("python", "my server.py"))]
    several = parse_args(["--agent", "a", "--server", "x=python s.py", "--server", "y=http://127.0.0.1:9/mcp"])
    assert [(u.name, u.command, u.url) for u in several.upstreams] == [
        ("x", ("python", "s.py"), None),
        ("y", (), "http://127.0.0.1:9/mcp"),
    ]
    assert several.upstreams[1].exposed("lookup") == "y.lookup"
    assert parse_args(["--agent", "a", "--listen", "127.0.0.1:8765", "--", "srv"]).listen == ("127.0.0.1", 8765)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--agent", "a"], "give the server command after --, or --server NAME=<command or URL>"),
        (["--", "python", "s.py"], "the following arguments are required: --agent"),
        (["--agent", "a", "--server", "python s.py"], "expected NAME=<command or URL>"),
        (["--agent", "a", "--server", "a.b=python s.py"], "NAME without '.'"),
        (["--agent", "a", "--server", "x="], "an empty command"),
        (["--agent", "a", "--server", "x=s", "--", "python", "t.py"], "name every server"),
        (["--agent", "a", "--listen", "8765", "--", "s"], "expected HOST:PORT"),
    ],
)
def test_a_bad_command_line_exits_2_and_says_what_is_wrong(argv, says, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.slow
def test_a_server_that_cannot_start_stops_the_gateway_with_its_name_and_why():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    gateway = subprocess.run(
        [GATEWAY, "--agent", "a", "--server", "orders=/nonexistent/orders-server", "--server", "crm=/bin/true"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gateway.returncode == 1
    assert "MCP server orders (/nonexistent/orders-server) did not start: FileNotFoundError" in gateway.stderr
