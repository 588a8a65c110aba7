"""``firebreak-mcp-gateway``: an MCP server that fronts real MCP servers and checks the agent's gate on every call.

An agent (or a coding assistant whose code nobody here controls) is pointed at the gateway instead of its MCP
servers. The gateway speaks MCP to it over stdio, or over streamable HTTP with ``--listen HOST:PORT``, and
to each upstream server over stdio (a command) or streamable HTTP (a URL)::

    firebreak-mcp-gateway --agent support-bot -- python orders_server.py
    firebreak-mcp-gateway --agent support-bot --server orders="python orders_server.py" \\
        --server crm=http://127.0.0.1:9000/mcp --listen 127.0.0.1:8765

- ``tools/list`` lists the upstream servers' tools; with several servers each is named ``NAME.tool`` (the
  names ``allowed_tools`` and tool switches use), with one they keep their own names.
- ``tools/call`` checks the gate first (``gate.check(tool=name, session=...)``). A killed or paused agent, a
  disabled tool, a tool outside ``allowed_tools``, a blocked session or an unreadable gate: the call returns an
  MCP error result (``isError: true``) whose text says why, the upstream is never called, and the refusal is
  recorded as a refusal span. An allowed call is forwarded, its result returned and a tool span sent.
- Spans go to Firebreak in one run per gateway session (the stdio connection, or one streamable HTTP session).

The gate is subscribed (the Redis subscription or the HTTP gate stream), so a kill applies to the very next
call. Credentials come from the environment as for :meth:`Gate.from_env <firebreak_sdk.Gate.from_env>`:
``FIREBREAK_URL``, ``FIREBREAK_API_KEY``, ``FIREBREAK_GATE_PUBLIC_KEY`` (and optionally ``FIREBREAK_REDIS_URL``).
Upstream servers started from a command inherit the gateway's environment without the ``FIREBREAK_*``
variables: the agent's key stays with the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import stat
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from anyio.abc import TaskGroup, TaskStatus
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from ..errors import GateClosed
from ..gate import Gate
from ..spans import Run
from ..tracer import Tracer
from .mcp_relay import relay_stdio

try:  # libuv's event loop when installed (the mcp extra asks for it): less loop overhead per relayed message
    import uvloop  # noqa: F401 - anyio picks it up by name

    HAVE_UVLOOP = True
except ImportError:  # pragma: no cover - the plain asyncio loop works, slower
    HAVE_UVLOOP = False

__all__ = ["McpGateway", "Upstream", "UpstreamUnavailable", "main", "parse_args"]

log = logging.getLogger("firebreak_sdk.gateways.mcp")

SEPARATOR = "."  # NAME.tool when the gateway fronts several servers
MAX_OUTPUT_CHARS = 64 * 1024  # a tool span keeps this much of the result's text
SHUTDOWN_FLUSH = 1.5  # seconds to send the last spans at exit, inside an MCP client's grace period
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # one JSON-RPC line from the agent
MAX_OPEN_RUNS = 1000  # streamable HTTP sessions with a run open at once


@dataclass(frozen=True)
class Upstream:
    """One MCP server behind the gateway: a command to start (stdio) or a streamable HTTP URL.

    ``name`` prefixes its tools (``name.tool``); ``None`` when it is the only server (tools keep their names).
    """

    name: str | None
    command: tuple[str, ...] = ()
    url: str | None = None

    @classmethod
    def parse(cls, name: str | None, target: str) -> Upstream:
        target = target.strip()
        if target.startswith(("http://", "https://")):
            return cls(name, url=target)
        command = tuple(shlex.split(target))
        if not command:
            raise ValueError(f"server {name or ''!r}: an empty command")
        return cls(name, command=command)

    def exposed(self, tool: str) -> str:
        return f"{self.name}{SEPARATOR}{tool}" if self.name else tool

    def __str__(self) -> str:
        return self.url or shlex.join(self.command)


class _PassThroughSession(ClientSession):
    """The gateway's session to an upstream: results pass through as the server sent them.

    ``ClientSession.call_tool`` checks structured content against the tool's output schema (about 1 ms a
    call). The gateway relays that schema in ``tools/list`` and the result unchanged, so the agent's own
    client checks it; checking it here too would only add latency, and answer a bad result with an error
    the agent's client did not ask for.
    """

    async def validate_tool_result(self, name: str, result: types.CallToolResult) -> None:
        return None


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def _stdio_pipes() -> AsyncIterator[tuple[Any, Any]]:
    """MCP over this process's stdin/stdout on the event loop's own pipe transports.

    ``mcp.server.stdio.stdio_server`` reads and writes through a worker thread, a hop each way per message;
    on a busy machine those hops are most of what a gateway adds to a call. Both must be pipes or sockets
    (:func:`_is_pipe`).
    """
    loop = asyncio.get_running_loop()
    stdin = os.fdopen(os.dup(0), "rb", buffering=0)
    stdout = os.fdopen(os.dup(1), "wb", buffering=0)
    try:
        reader = asyncio.StreamReader(limit=MAX_MESSAGE_BYTES, loop=loop)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), stdin)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stdout)
    except BaseException:
        stdin.close()
        stdout.close()
        raise
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    os.dup2(2, 1)  # stray prints (ours, a library's) go to stderr, never onto the wire
    read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_in, write_out = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_lines() -> None:
        async with read_in:
            while line := await reader.readline():
                if not line.strip():
                    continue
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception as exc:  # the session answers a malformed message; the connection goes on
                    await read_in.send(exc)
                    continue
                await read_in.send(SessionMessage(message))

    async def write_lines() -> None:
        async with write_out:
            async for message in write_out:
                writer.write(message.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")
                await writer.drain()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_lines)
            tg.start_soon(write_lines)
            try:
                yield read_out, write_in
            finally:
                tg.cancel_scope.cancel()
    finally:
        transport.close()
        stdin.close()


@dataclass
class _Connected:
    upstream: Upstream
    session: ClientSession


@dataclass
class _SessionRun:
    """The run one gateway session records into, and the id the gate checks blocks against."""

    run: Run
    session_id: str
    begun: bool = False  # the session's run passed gate.begin_run() (refused while the budget is frozen)


def _upstream_env() -> dict[str, str]:
    """The gateway's environment without Firebreak's credentials: an upstream server never sees the agent's key."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}


def _result_text(result: types.CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')}]")
    text = "\n".join(parts)
    if not text and result.structured_content is not None:
        text = repr(result.structured_content)
    return text[:MAX_OUTPUT_CHARS]


class UpstreamUnavailable(RuntimeError):
    """An MCP server behind the gateway could not be started or reached."""


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside any exception groups (anyio wraps task failures), or ``exc`` itself."""
    inner = getattr(exc, "exceptions", None)  # BaseExceptionGroup, or its backport on Python 3.10
    if isinstance(inner, tuple) and inner:
        return [leaf for e in inner if isinstance(e, BaseException) for leaf in _leaves(e)]
    return [exc]


def _describe(exc: BaseException) -> str:
    """What went wrong, from the first exception inside any exception groups."""
    leaf = _leaves(exc)[0]
    return f"{type(leaf).__name__}: {leaf}"


def _refusal(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


class McpGateway:
    """The gateway's core, independent of how the agent connects: upstream sessions, the tool map, the checks.

    Use it as an async context manager (it connects to every upstream and leaves them connected), then serve
    :attr:`server` over stdio (:meth:`serve_stdio`) or streamable HTTP (:meth:`serve_http`).
    """

    def __init__(self, agent: str, upstreams: Sequence[Upstream], *, gate: Gate, tracer: Tracer) -> None:
        if not upstreams:
            raise ValueError("at least one upstream server is required")
        names = [u.name for u in upstreams]
        if len(upstreams) > 1 and (None in names or len(set(names)) != len(names)):
            raise ValueError("with several servers, each needs its own NAME (--server NAME=<command or URL>)")
        self.agent = agent
        self.upstreams = list(upstreams)
        self.gate = gate
        self.tracer = tracer
        self._connected: list[_Connected] = []
        self._tools: dict[str, tuple[_Connected, str]] = {}  # exposed name -> (upstream, its own tool name)
        self._runs: dict[str, _SessionRun] = {}  # by Mcp-Session-Id ("" over stdio), oldest first
        self._holders: TaskGroup | None = None
        self._closing = anyio.Event()
        self.server: Server[Any] = Server(
            f"firebreak-mcp-gateway:{agent}",
            version="1",
            instructions=f"Tools of {agent}, behind Firebreak's gate: a refused call answers with an error saying why.",
            on_list_tools=self._on_list_tools,
            on_call_tool=self._on_call_tool,
        )

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def __aenter__(self) -> McpGateway:
        """Start or reach every upstream server at once (each held open by a task of the gateway's task group)."""
        self._holders = holders = anyio.create_task_group()
        await holders.__aenter__()
        sessions: dict[int, ClientSession] = {}
        try:
            async with anyio.create_task_group() as starting:
                for index, upstream in enumerate(self.upstreams):
                    starting.start_soon(self._start, holders, index, upstream, sessions)
            self._connected = [_Connected(u, sessions[i]) for i, u in enumerate(self.upstreams)]
            await self.refresh_tools()
        except BaseException as exc:
            self._closing.set()
            holders.cancel_scope.cancel()
            with contextlib.suppress(BaseException):  # the failure is the one raised below
                await holders.__aexit__(None, None, None)
            failure = next((e for e in _leaves(exc) if isinstance(e, UpstreamUnavailable)), None)
            if failure is not None:
                raise failure from exc
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.end_runs()
        self._closing.set()
        if self._holders is not None:
            await self._holders.__aexit__(None, None, None)

    def end_runs(self) -> None:
        """End every open run (its spans go to the tracer); a later call starts a new one."""
        while self._runs:
            self._runs.pop(next(iter(self._runs))).run.end()

    async def _start(
        self, holders: TaskGroup, index: int, upstream: Upstream, sessions: dict[int, ClientSession]
    ) -> None:
        try:
            sessions[index] = await holders.start(self._hold, upstream)
        except Exception as exc:
            named = f"{upstream.name} " if upstream.name else ""
            raise UpstreamUnavailable(f"MCP server {named}({upstream}) did not start: {_describe(exc)}") from exc

    async def _hold(self, upstream: Upstream, *, task_status: TaskStatus[ClientSession]) -> None:
        """Connect to ``upstream``, hand over its initialized session, and keep it open until the gateway closes."""
        async with contextlib.AsyncExitStack() as stack:
            if upstream.url:
                read, write = await stack.enter_async_context(streamable_http_client(upstream.url))
            else:
                params = StdioServerParameters(
                    command=upstream.command[0], args=list(upstream.command[1:]), env=_upstream_env()
                )
                read, write = await stack.enter_async_context(stdio_client(params))
            session = await stack.enter_async_context(_PassThroughSession(read, write))
            await session.initialize()
            task_status.started(session)
            await self._closing.wait()

    # --- tools ---------------------------------------------------------------------------------------------

    async def refresh_tools(self) -> list[types.Tool]:
        """Ask every upstream for its tools (all pages) and rebuild the name map; the tools as the agent sees them."""
        tools: list[types.Tool] = []
        mapping: dict[str, tuple[_Connected, str]] = {}
        for held in self._connected:
            cursor: str | None = None
            while True:
                params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                page = await held.session.list_tools(params=params)
                for tool in page.tools:
                    exposed = held.upstream.exposed(tool.name)
                    mapping[exposed] = (held, tool.name)
                    tools.append(tool if exposed == tool.name else tool.model_copy(update={"name": exposed}))
                cursor = page.next_cursor
                if not cursor:
                    break
        self._tools = mapping
        return tools

    async def _on_list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await self.refresh_tools())

    async def _on_call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await self.call(params.name, params.arguments or {}, request=ctx.request)

    async def call(self, name: str, arguments: dict[str, Any], *, request: object = None) -> types.CallToolResult:
        """One ``tools/call``: the gate first, then the upstream; a span either way. Never raises for a refusal."""
        held = self._run_for(request)
        try:
            if not held.begun:  # a new session is a new run: refused while the budget is frozen, as begin_run says
                self.gate.begin_run()
                held.begun = True
            # In memory while the push path is alive (well under a microsecond); otherwise one bounded re-read
            # (the gate's timeout, 0.5 s), which this call has to wait for anyway: no thread hop on the hot path.
            self.gate.check(tool=name, session=held.session_id)
        except GateClosed as stop:
            held.run.refused(stop, arguments, tool=name)
            return _refusal(str(stop))
        target = self._tools.get(name)
        if target is None:
            await self.refresh_tools()  # a server may have added tools since the last list
            target = self._tools.get(name)
        if target is None:
            message = f"unknown tool {name!r}"
            held.run.tool(name, arguments, error=message, duration=0)
            return _refusal(message)
        upstream, tool = target
        started = time.perf_counter()
        try:
            result = await upstream.session.call_tool(tool, arguments)
        except Exception as exc:  # the upstream failed or went away: the agent gets an error result, not a crash
            message = f"{upstream.upstream.name or 'server'} failed on {tool}: {type(exc).__name__}: {exc}"
            held.run.tool(name, arguments, error=message, duration=time.perf_counter() - started)
            return _refusal(message)
        duration = time.perf_counter() - started
        text = _result_text(result)
        held.run.tool(
            name, arguments, output=text, error=(text or "error") if result.is_error else None, duration=duration
        )
        return result

    def _run_for(self, request: object) -> _SessionRun:
        """The run of the gateway session this call belongs to: over stdio the one connection, over streamable
        HTTP the ``Mcp-Session-Id`` (a request without one, in stateless use, shares the gateway's run)."""
        headers = getattr(request, "headers", None)
        key = (headers.get("mcp-session-id") if headers is not None else None) or ""
        held = self._runs.get(key)
        if held is None:
            session_id = key or uuid.uuid4().hex
            run = self.tracer.run(f"mcp-gateway:{self.agent}", session_id=session_id, input_class="mcp")
            held = self._runs[key] = _SessionRun(run, session_id)
            while len(self._runs) > MAX_OPEN_RUNS:  # sessions that went quiet: end the oldest run
                self._runs.pop(next(iter(self._runs))).run.end()
        return held

    # --- serving -------------------------------------------------------------------------------------------

    async def serve_stdio(self) -> None:
        """Serve one agent over this process's stdin/stdout until it disconnects."""
        # stdin or stdout not a pipe (a file, a terminal): mcp's own transport, through a thread
        transport = _stdio_pipes() if _is_pipe(0) and _is_pipe(1) else stdio_server()
        async with transport as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    async def serve_http(self, host: str, port: int) -> None:
        """Serve streamable HTTP at ``http://HOST:PORT/mcp`` until cancelled."""
        app = self.server.streamable_http_app(host=host)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        await uvicorn.Server(config).serve()


# --- the command line --------------------------------------------------------------------------------------


@dataclass
class Options:
    agent: str
    upstreams: list[Upstream]
    listen: tuple[str, int] | None


def parse_args(argv: Sequence[str]) -> Options:
    """``--agent SLUG [--server NAME=TARGET ...] [--listen HOST:PORT] [-- COMMAND ...]``; exits 2 on bad usage."""
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="firebreak-mcp-gateway",
        description="Front MCP servers with the agent's Firebreak gate: every tool call is checked, and recorded.",
        epilog="Credentials: FIREBREAK_URL, FIREBREAK_API_KEY, FIREBREAK_GATE_PUBLIC_KEY (or FIREBREAK_REDIS_URL).",
    )
    parser.add_argument("--agent", required=True, help="the agent's slug in Firebreak")
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=TARGET",
        help="an upstream MCP server: a command (stdio) or an http(s) URL (streamable HTTP); repeat for several, "
        "their tools then named NAME.tool",
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="serve streamable HTTP at http://HOST:PORT/mcp")
    args = parser.parse_args(argv)
    upstreams: list[Upstream] = []
    try:
        for spec in args.server:
            name, sep, target = spec.partition("=")
            if not sep or not name or SEPARATOR in name:
                parser.error(f"--server {spec!r}: expected NAME=<command or URL>, NAME without '{SEPARATOR}'")
            upstreams.append(Upstream.parse(name, target))
        if command:
            upstreams.append(Upstream(None, command=tuple(command)))
    except ValueError as exc:
        parser.error(str(exc))
    if not upstreams:
        parser.error("give the server command after --, or --server NAME=<command or URL>")
    if len(upstreams) > 1 and any(u.name is None for u in upstreams):
        parser.error("with --server, name every server (the command after -- has no name)")
    if len(upstreams) == 1 and upstreams[0].name is not None and not command:
        upstreams = [Upstream(None, upstreams[0].command, upstreams[0].url)]  # one server: tools keep their names
    listen = None
    if args.listen:
        host, sep, port = args.listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            parser.error(f"--listen {args.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
        listen = (host, int(port))
    return Options(args.agent, upstreams, listen)


def relayable(options: Options) -> bool:
    """One server started from a command, the agent on this process's stdin/stdout (pipes): the relay serves it
    (``mcp_relay``), with nothing to rename or multiplex."""
    (first, *others) = options.upstreams
    return not others and options.listen is None and bool(first.command) and _is_pipe(0) and _is_pipe(1)


async def _serve(gateway: McpGateway, options: Options) -> int:
    with contextlib.suppress(GateClosed):
        gateway.gate.check()  # read the gate now, not at the first call (a closed gate is answered per call)
    if relayable(options):
        command = options.upstreams[0].command
        try:
            gate, tracer = gateway.gate, gateway.tracer
            return await relay_stdio(gateway.agent, command, gate=gate, tracer=tracer, env=_upstream_env())
        except OSError as exc:
            raise UpstreamUnavailable(f"MCP server ({shlex.join(command)}) did not start: {_describe(exc)}") from exc
    async with gateway:
        if options.listen:
            await gateway.serve_http(*options.listen)
        else:
            await gateway.serve_stdio()
    return 0


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    # stdout is the MCP channel in stdio mode: everything the gateway says goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="firebreak-mcp-gateway: %(message)s")
    # An MCP client ends a stdio server by closing its stdin, then SIGTERM after a grace period (2 s in the
    # Python SDK): either way the runs are ended and the spans sent before the process goes.
    signal.signal(signal.SIGTERM, _terminated)
    gate = Gate.from_env(options.agent)
    tracer = Tracer.from_env(options.agent)
    try:
        gateway = McpGateway(options.agent, options.upstreams, gate=gate, tracer=tracer)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    try:
        code = anyio.run(_serve, gateway, options, backend_options={"use_uvloop": HAVE_UVLOOP})
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.error("%s", exc if isinstance(exc, UpstreamUnavailable) else _describe(exc))
        return 1
    finally:
        gateway.end_runs()
        tracer.close(timeout=SHUTDOWN_FLUSH)
        gate.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
