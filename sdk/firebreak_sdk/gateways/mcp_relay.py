"""The MCP gateway's fast path: one stdio server behind a stdio agent, relayed message by message.

With one server and the agent on stdio, the gateway needs no MCP session of its own: every JSON-RPC line goes
through as the peer wrote it (``initialize``, capabilities, resources, prompts, notifications, progress, the
server's own requests to the agent), and only ``tools/call`` is looked at. Each call is checked at the gate
before it is forwarded; a refused call is answered here, as an MCP error result (``isError: true``) saying why,
and never reaches the server. The answer to a forwarded call is relayed first and its span recorded after.

Measured on 2 cores (``bench/mcp_gateway.py``), relaying a line costs a few tens of microseconds where the
session-based gateway (``McpGateway``: parse, validate and re-encode every message on both sides) cost about
2 ms of CPU a call; that path stays for several servers and for streamable HTTP, where names are rewritten
(``NAME.tool``) and sessions multiplexed.

When the server exits, the calls in flight are answered with an error result naming the exit, and the gateway
exits too (code 1): to the agent's client it looks as the server's own exit would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..errors import GateClosed
from ..gate import Gate
from ..spans import Run
from ..tracer import Tracer

__all__ = ["relay_stdio"]

log = logging.getLogger("firebreak_sdk.gateways.mcp")

MAX_LINE_BYTES = 64 * 1024 * 1024  # one JSON-RPC message, either way
MAX_OUTPUT_CHARS = 64 * 1024  # a tool span keeps this much of the result's text
EXIT_GRACE = 2.0  # seconds the server has to exit once its stdin is closed, before SIGTERM


def result_text(result: dict[str, Any]) -> str:
    """The text a tool span keeps of an MCP ``CallToolResult`` as JSON: its text blocks, ``[type]`` for others,
    the structured content when there is no text."""
    parts: list[str] = []
    content = result.get("content")
    for block in content if isinstance(content, list) else []:
        text = block.get("text") if isinstance(block, dict) else None
        kind = block.get("type", "content") if isinstance(block, dict) else "content"
        parts.append(text if isinstance(text, str) else f"[{kind}]")
    text = "\n".join(parts)
    if not text and result.get("structuredContent") is not None:
        text = repr(result["structuredContent"])
    return text[:MAX_OUTPUT_CHARS]


def _error_result(request_id: Any, message: str) -> dict[str, Any]:
    """A JSON-RPC answer carrying an MCP tool error result (the agent reads it as the tool's failure)."""
    result = {"content": [{"type": "text", "text": message}], "isError": True}
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _line(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class _Relay:
    """The state of one relayed connection: its run, the calls in flight, both pipes."""

    def __init__(self, agent: str, gate: Gate, tracer: Tracer) -> None:
        self.agent = agent
        self.gate = gate
        self.session = uuid.uuid4().hex  # the id the gate checks session blocks against
        self.run: Run = tracer.run(f"mcp-gateway:{agent}", session_id=self.session, input_class="mcp")
        self.begun = False
        self.pending: dict[Any, tuple[str, Any, float]] = {}  # request id -> (tool, arguments, started)
        self.to_agent: asyncio.StreamWriter | None = None
        self.to_server: asyncio.StreamWriter | None = None

    # --- agent → server ------------------------------------------------------------------------------------

    def admit(self, message: Any) -> dict[str, Any] | None:
        """For a ``tools/call`` request: ``None`` to forward it (remembered as in flight), or the refusal to
        answer with. Anything else is forwarded as it is."""
        if not isinstance(message, dict) or message.get("method") != "tools/call" or "id" not in message:
            return None
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        name = params.get("name")
        if not isinstance(name, str):
            return None  # malformed: the server answers it with its own error
        arguments = params.get("arguments") if params.get("arguments") is not None else {}
        try:
            if not self.begun:  # the connection's run begins: refused while the budget is frozen
                self.gate.begin_run()
                self.begun = True
            self.gate.check(tool=name, session=self.session)
        except GateClosed as stop:
            self.run.refused(stop, arguments, tool=name)
            return _error_result(message["id"], str(stop))
        self.pending[self._key(message["id"])] = (name, arguments, time.perf_counter())
        return None

    @staticmethod
    def _key(request_id: Any) -> Any:
        # JSON-RPC ids are numbers or strings, and 1 is not "1"; unhashable ids (invalid) are never in flight.
        return (type(request_id).__name__, request_id) if isinstance(request_id, (int, float, str)) else None

    async def from_agent(self, reader: asyncio.StreamReader) -> None:
        assert self.to_server is not None and self.to_agent is not None
        while line := await reader.readline():
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                message = None  # not JSON: the server answers with a parse error
            if isinstance(message, list):  # a JSON-RPC batch (MCP 2025-03-26): refused calls answered apart
                forwarded, refusals = [], []
                for one in message:
                    refusal = self.admit(one)
                    if refusal is None:
                        forwarded.append(one)
                    else:
                        refusals.append(refusal)
                if forwarded:
                    self.to_server.write(_line(forwarded) if len(forwarded) < len(message) else line)
                if refusals:
                    self.to_agent.write(_line(refusals))
                await self.to_server.drain()
                continue
            refusal = self.admit(message)
            if refusal is None:
                self.to_server.write(line)
            else:
                self.to_agent.write(_line(refusal))
            await self.to_server.drain()

    # --- server → agent ------------------------------------------------------------------------------------

    async def from_server(self, reader: asyncio.StreamReader) -> None:
        assert self.to_agent is not None
        while line := await reader.readline():
            self.to_agent.write(line)  # first the agent's answer, then the span
            if self.pending and line.strip():
                with contextlib.suppress(ValueError):
                    self.answered(json.loads(line))
            await self.to_agent.drain()

    def answered(self, message: Any) -> None:
        for one in message if isinstance(message, list) else [message]:
            if not isinstance(one, dict) or "method" in one or ("result" not in one and "error" not in one):
                continue  # a request or notification of the server's, not an answer
            call = self.pending.pop(self._key(one.get("id")), None)
            if call is None:
                continue
            name, arguments, started = call
            duration = time.perf_counter() - started
            result = one.get("result")
            if isinstance(result, dict):
                text = result_text(result)
                error = (text or "error") if result.get("isError") else None
                self.run.tool(name, arguments, output=text, error=error, duration=duration)
            else:
                error_object = one.get("error")
                detail = error_object.get("message") if isinstance(error_object, dict) else None
                self.run.tool(name, arguments, error=f"MCP error: {detail or error_object!r}", duration=duration)

    def server_gone(self, message: str) -> None:
        """Answer every call in flight with ``message`` (and record it): the server will not."""
        assert self.to_agent is not None
        for (_, request_id), (name, arguments, started) in list(self.pending.items()):
            self.to_agent.write(_line(_error_result(request_id, message)))
            self.run.tool(name, arguments, error=message, duration=time.perf_counter() - started)
        self.pending.clear()


async def _agent_pipes() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """This process's stdin and stdout on the event loop's pipe transports; stray prints go to stderr."""
    loop = asyncio.get_running_loop()
    stdin = os.fdopen(os.dup(0), "rb", buffering=0)
    stdout = os.fdopen(os.dup(1), "wb", buffering=0)
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stdout)
    os.dup2(2, 1)  # nothing but the relayed messages on the wire
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


async def relay_stdio(agent: str, command: Sequence[str], *, gate: Gate, tracer: Tracer, env: dict[str, str]) -> int:
    """Start the server ``command`` and relay between it and this process's stdin/stdout until either side ends.

    Returns 0 when the agent disconnected, 1 when the server exited first (its calls in flight answered with an
    error). Raises ``OSError`` when the server cannot be started.
    """
    server = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        limit=MAX_LINE_BYTES,
    )
    assert server.stdin is not None and server.stdout is not None
    relay = _Relay(agent, gate, tracer)
    agent_in, relay.to_agent = await _agent_pipes()
    relay.to_server = server.stdin
    agent_side = asyncio.ensure_future(relay.from_agent(agent_in))
    server_side = asyncio.ensure_future(relay.from_server(server.stdout))
    try:
        done, _ = await asyncio.wait({agent_side, server_side}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None and not isinstance(task.exception(), (ConnectionError, BrokenPipeError)):
                log.error("relay failed: %r", task.exception())
        if server_side in done:  # the server went first: its calls in flight will never be answered
            code = await server.wait()
            log.error("the MCP server (%s) exited with code %s", " ".join(command), code)
            relay.server_gone(f"the MCP server behind the gateway exited (code {code}) before answering")
            with contextlib.suppress(ConnectionError):
                await relay.to_agent.drain()
            return 1
        return 0
    finally:
        for task in (agent_side, server_side):
            task.cancel()
        with contextlib.suppress(ConnectionError, OSError):
            server.stdin.close()
        try:
            await asyncio.wait_for(server.wait(), EXIT_GRACE)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                server.terminate()
            await server.wait()
        relay.run.end()
