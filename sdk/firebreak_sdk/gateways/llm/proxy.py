"""The LLM gateway's ASGI app: admission (gate, forced tool, the session's budget), forwarding, the stream relay
that a kill cuts, and one span per call in one run per session."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ...errors import FirebreakStop, GateClosed, GateUnavailable
from ...gate import Gate
from ...guards import BudgetGuard
from ...spans import Run
from ...tracer import Tracer
from .shapes import (
    INPUT_FIELD,
    OUTCOMES,
    Outcome,
    Price,
    StreamReader,
    error_body,
    named_tool,
    refusal_status,
    upstream_error,
)

__all__ = ["LLMGateway"]

SESSION_HEADER = "x-firebreak-session"
USER_HEADER = "x-firebreak-user"
# Headers of the client's request the upstream needs; everything else (hop-by-hop, X-Firebreak-*) stays here.
FORWARDED_HEADERS = ("openai-organization", "openai-project", "openai-beta", "accept", "user-agent")
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ValueError)  # ValueError: an over-long line
WATCH_INTERVAL = 0.02  # seconds: while an upstream stream is silent, how often the gate is looked at

# --- sessions -----------------------------------------------------------------------------------------------


class _Session:
    """One session's run (its trajectory) and budget."""

    __slots__ = ("budget", "key", "last", "run")

    def __init__(self, key: str, run: Run, budget: BudgetGuard) -> None:
        self.key = key
        self.run = run
        self.budget = budget
        self.last = time.monotonic()


class LLMGateway:
    """The gateway as an ASGI app (:attr:`app`). ``upstream`` is the OpenAI base URL of the model API
    (with its ``/v1``); ``prices`` maps a model to its :class:`Price`; a session idle for ``session_idle``
    seconds has its run ended and its budget forgotten."""

    def __init__(
        self,
        *,
        gate: Gate,
        tracer: Tracer,
        upstream: str,
        prices: dict[str, Price] | None = None,
        upstream_api_key: str | None = None,
        session_idle: float = 600.0,
        timeout: float = 600.0,
    ) -> None:
        self.gate = gate
        self.tracer = tracer
        self.upstream = upstream.rstrip("/")
        self.prices = dict(prices or {})
        self.upstream_api_key = upstream_api_key
        self.session_idle = session_idle
        self.timeout = timeout
        self.sessions: dict[str, _Session] = {}
        self._client: aiohttp.ClientSession | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._routes: dict[str, tuple[str, Callable[[Request], Awaitable[Response]]]] = {
            "/v1/chat/completions": ("POST", self._chat),
            "/v1/responses": ("POST", self._responses),
            "/v1/embeddings": ("POST", self._embeddings),
            "/v1/models": ("GET", self._models),
        }

    # --- the ASGI app ---------------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: five routes looked up in a dict. Starlette's application (its router and middleware
        stack) cost about a sixth of the gateway's CPU per call; its requests and responses are kept."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        route = self._routes.get(path) or (self._routes["/v1/models"] if path.startswith("/v1/models/") else None)
        response: Response
        if route is None:
            error = {"message": f"no route {path}", "type": "invalid_request_error", "code": "not_found", "param": None}
            response = JSONResponse({"error": error}, 404)
        elif scope["method"] != route[0]:
            error = {
                "message": f"{path} takes {route[0]}",
                "type": "invalid_request_error",
                "code": None,
                "param": None,
            }
            response = JSONResponse({"error": error}, 405, headers={"allow": route[0]})
        else:
            response = await route[1](Request(scope, receive))
        await response(scope, receive, send)

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        # aiohttp, not httpx, for the upstream: measured here, httpx's async stack cost ~2 ms per call on a busy
        # 2-core machine, a few times aiohttp's, and the gateway's budget is 2 ms p99 (bench/llm_gateway.py).
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout, connect=10.0),
            connector=aiohttp.TCPConnector(limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),  # an upstream's cookies are not shared between the agent's calls
            read_bufsize=2**22,  # a stream's event is one line: a whole response.completed can be long
        )
        self._sweeper = asyncio.create_task(self._sweep())

    async def _stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for key in list(self.sessions):
            self._end_session(key)
        await self.client.close()
        self.tracer.close()
        self.gate.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(self.session_idle / 2, 5.0)))
            now = time.monotonic()
            for key in [k for k, s in self.sessions.items() if now - s.last > self.session_idle]:
                self._end_session(key)

    def _end_session(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        if session is not None:
            session.run.end()

    @property
    def client(self) -> aiohttp.ClientSession:
        assert self._client is not None, "the gateway's app was not started (its lifespan did not run)"
        return self._client

    # --- routes -------------------------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        return await self._call(request, "chat", "/chat/completions")

    async def _responses(self, request: Request) -> Response:
        return await self._call(request, "responses", "/responses")

    async def _embeddings(self, request: Request) -> Response:
        return await self._call(request, "embeddings", "/embeddings")

    async def _models(self, request: Request) -> Response:
        try:
            url = self.upstream + request.url.path[len("/v1") :]
            async with self.client.get(url, headers=self._headers(request)) as resp:
                content, status, media_type = await resp.read(), resp.status, resp.headers.get("content-type")
        except UPSTREAM_ERRORS as exc:
            return JSONResponse(upstream_error(f"upstream unreachable: {exc!r}", "upstream_unreachable"), 502)
        return Response(content, status, media_type=media_type)

    # --- one model call -------------------------------------------------------------------------------------

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        for name in FORWARDED_HEADERS:
            if value := request.headers.get(name):
                headers[name] = value
        if self.upstream_api_key:
            headers["authorization"] = f"Bearer {self.upstream_api_key}"
        elif auth := request.headers.get("authorization"):
            headers["authorization"] = auth
        return headers

    @staticmethod
    def _who(request: Request, body: dict[str, Any]) -> tuple[str | None, str | None]:
        session = request.headers.get(SESSION_HEADER) or None
        user = request.headers.get(USER_HEADER) or None
        if user is None and isinstance(body.get("user"), str) and body["user"]:
            user = body["user"]
        return session, user

    async def _check(self, session: str | None, user: str | None) -> None:
        """``gate.check`` on the loop while changes are pushed (no I/O), else in a thread (it may read over HTTP)."""
        if self.gate.subscribed:
            self.gate.check(session=session, user=user)
        else:
            await asyncio.to_thread(self.gate.check, session=session, user=user)

    def _admit(self, session: str | None, user: str | None, body: dict[str, Any]) -> _Session:
        """The gate, the forced tool and the session's budget; raises the ``FirebreakStop`` that refuses the call."""
        self.gate.check(session=session, user=user)
        tool = named_tool(body.get("tool_choice"))
        if tool is not None:
            self.gate.check(tool=tool)
        key = session or (f"user:{user}" if user else "default")
        held = self.sessions.get(key)
        if held is None:
            self.gate.begin_run()  # a frozen budget refuses new sessions; those in flight drain
            budget = BudgetGuard(self.gate)
            run = self.tracer.run(f"{self.gate.agent} via llm gateway", session_id=session, user_id=user)
            held = self.sessions[key] = _Session(key, run, budget)
        held.last = time.monotonic()
        held.budget.before_model_call()
        return held

    def _refuse(self, stop: FirebreakStop, session: str | None, user: str | None, body: dict[str, Any]) -> Response:
        key = session or (f"user:{user}" if user else "default")
        held = self.sessions.get(key)
        if held is not None:  # the session's trajectory shows what was refused
            tool = getattr(stop, "tool", None)
            if isinstance(stop, GateClosed) and tool is not None:
                held.run.refused(stop, {"tool_choice": body.get("tool_choice")}, tool=tool)
            else:
                held.run.llm(
                    name="refused",
                    model=body.get("model"),
                    error=str(stop),
                    duration=0,
                    attributes={"firebreak.refused": type(stop).__name__, "firebreak.refusal_reason": str(stop)},
                )
            if isinstance(stop, GateClosed) and not isinstance(stop, GateUnavailable) and tool is None:
                held.run.set_error(stop)  # killed, paused, blocked, frozen: the trajectory ends as stopped
                self._end_session(key)
        headers = {"x-should-retry": "false"} if refusal_status(stop) != 503 else {"retry-after": "1"}
        return JSONResponse(error_body(stop), refusal_status(stop), headers=headers)

    async def _call(self, request: Request, kind: str, path: str) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            invalid = {"message": "the request body must be a JSON object", "type": "invalid_request_error"}
            return JSONResponse({"error": {**invalid, "code": "invalid_json", "param": None}}, 400)
        session, user = self._who(request, body)
        try:
            if self.gate.subscribed:  # changes are pushed: a check is a lookup (a Redis GET at most)
                held = self._admit(session, user, body)
            else:  # not pushed (yet): a check may read the gate over HTTP, which must not stall every call
                held = await asyncio.to_thread(self._admit, session, user, body)
        except FirebreakStop as stop:
            return self._refuse(stop, session, user, body)
        if body.get("stream") is True and kind != "embeddings":
            return await self._stream(request, kind, path, body, held, session, user)
        started = time.monotonic()
        try:
            async with self.client.post(self.upstream + path, data=raw, headers=self._headers(request)) as resp:
                content, status, media_type = await resp.read(), resp.status, resp.headers.get("content-type")
        except UPSTREAM_ERRORS as exc:
            self._record(held, kind, body, Outcome(), started, error=f"upstream unreachable: {exc!r}")
            return JSONResponse(upstream_error(f"upstream unreachable: {exc!r}", "upstream_unreachable"), 502)
        out = Outcome()
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        ok = 200 <= status < 300
        if isinstance(data, dict):
            out.model = data.get("model") if isinstance(data.get("model"), str) else None
            if ok:
                OUTCOMES[kind](data, out)
        error = None if ok else f"upstream answered {status}: {content[:500].decode(errors='replace')}"
        # The budget counts the usage before the answer leaves (the session's next call sees it); the span is
        # encoded after the answer is sent, off the call's latency.
        model, cost = self._count(held, body, out)
        duration = time.monotonic() - started

        async def span() -> None:
            self._span(held, kind, body, out, model, cost, duration, error)

        return Response(content, status, media_type=media_type, background=BackgroundTask(span))

    async def _stream(
        self,
        request: Request,
        kind: str,
        path: str,
        body: dict[str, Any],
        held: _Session,
        session: str | None,
        user: str | None,
    ) -> Response:
        hide_usage = False
        if kind == "chat":  # usage comes in a last chunk only when asked for: ask, and hide it if the client did not
            given = body.get("stream_options")
            options: dict[str, Any] = given if isinstance(given, dict) else {}
            if not options.get("include_usage"):
                body = {**body, "stream_options": {**options, "include_usage": True}}
                hide_usage = True
        started = time.monotonic()
        try:
            resp = await self.client.post(self.upstream + path, json=body, headers=self._headers(request))
        except UPSTREAM_ERRORS as exc:
            self._record(held, kind, body, Outcome(), started, error=f"upstream unreachable: {exc!r}")
            return JSONResponse(upstream_error(f"upstream unreachable: {exc!r}", "upstream_unreachable"), 502)
        if not 200 <= resp.status < 300:
            try:
                content = await resp.read()
            finally:
                resp.release()
            error = f"upstream answered {resp.status}: {content[:500].decode(errors='replace')}"
            self._record(held, kind, body, Outcome(), started, error=error)
            return Response(content, resp.status, media_type=resp.headers.get("content-type"))
        reader = StreamReader(kind, hide_usage)
        relay = self._relay(resp, reader, held, kind, body, session, user, started)
        return StreamingResponse(relay, media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _relay(
        self,
        resp: aiohttp.ClientResponse,
        reader: StreamReader,
        held: _Session,
        kind: str,
        body: dict[str, Any],
        session: str | None,
        user: str | None,
        started: float,
    ) -> AsyncIterator[bytes]:
        """Pass the upstream's events through one by one, looking at the gate before each and while the upstream
        is silent; a closed gate ends the stream with an SSE error event and closes the upstream connection."""
        error: str | None = None
        stop: GateClosed | None = None
        finished = False
        event: list[str] = []
        pending: asyncio.Future[bytes] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(resp.content.readline())
                try:
                    while not (await asyncio.wait({pending}, timeout=WATCH_INTERVAL))[0]:
                        await self._check(session, user)
                except GateClosed:
                    pending.cancel()
                    raise
                raw_line = pending.result()
                line = raw_line.decode().rstrip("\r\n") if raw_line else None  # b"": the upstream ended
                if line:
                    event.append(line)
                    continue
                if event:
                    await self._check(session, user)
                    data = "\n".join(x[5:].lstrip() for x in event if x.startswith("data:"))
                    if reader.feed(data):
                        yield ("\n".join(event) + "\n\n").encode()
                    event = []
                if line is None:
                    finished = True
                    break
        except GateClosed as closed:
            stop = closed
            error = f"stream cut by the gate: {closed}"
            yield f"data: {json.dumps(error_body(closed))}\n\n".encode()
        except UPSTREAM_ERRORS as exc:
            error = f"upstream stream failed: {exc!r}"
            yield f"data: {json.dumps(upstream_error(error, 'upstream_stream_failed'))}\n\n".encode()
        finally:
            if pending is not None and not pending.done():  # the client left while the upstream was silent
                pending.cancel()
            if finished:
                resp.release()
            else:  # cut, failed or the client left: close the upstream connection, the upstream stops generating
                resp.close()
            out = reader.outcome()
            self._record(held, kind, body, out, started, error=error, stop=stop)
            if stop is not None and not isinstance(stop, GateUnavailable):
                held.run.set_error(stop)  # killed, paused or blocked mid-answer: the trajectory ends as stopped
                self._end_session(held.key)

    def _record(
        self,
        held: _Session,
        kind: str,
        body: dict[str, Any],
        out: Outcome,
        started: float,
        *,
        error: str | None = None,
        stop: GateClosed | None = None,
    ) -> None:
        """The call's usage counted against the session's budget, and its span."""
        self._span(held, kind, body, out, *self._count(held, body, out), time.monotonic() - started, error, stop)

    def _count(self, held: _Session, body: dict[str, Any], out: Outcome) -> tuple[str | None, float]:
        """Count the call's tokens and cost against the session's budget; its model and cost."""
        model = out.model or (body.get("model") if isinstance(body.get("model"), str) else None)
        price = self.prices.get(str(body.get("model"))) or self.prices.get(str(model))
        cost = price.cost(out.tokens_in, out.tokens_out) if price is not None else 0.0
        held.budget.record(cost=cost, tokens=out.tokens_in + out.tokens_out)
        held.last = time.monotonic()
        return model, cost

    @staticmethod
    def _span(
        held: _Session,
        kind: str,
        body: dict[str, Any],
        out: Outcome,
        model: str | None,
        cost: float,
        duration: float,
        error: str | None = None,
        stop: GateClosed | None = None,
    ) -> None:
        attributes: dict[str, Any] = {"firebreak.gateway": "llm", "gen_ai.operation.name": kind}
        if stop is not None:
            attributes.update({"firebreak.refused": type(stop).__name__, "firebreak.refusal_reason": str(stop)})
        held.run.llm(
            name=kind if kind != "chat" else "chat.completions",
            model=model,
            input=body.get(INPUT_FIELD[kind]),
            output=out.output,
            tokens_in=out.tokens_in,
            tokens_out=out.tokens_out,
            cost=cost,
            finish_reason=out.finish_reason,
            error=error,
            duration=duration,
            attributes=attributes,
        )
