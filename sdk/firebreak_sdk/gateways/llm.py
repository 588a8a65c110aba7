"""``firebreak-llm-gateway``: an OpenAI-compatible proxy checking the agent's gate and budget before each model call.

An agent (any code, any framework) is made stoppable by pointing its OpenAI ``base_url`` at the gateway::

    firebreak-llm-gateway --agent refund-agent --upstream https://api.openai.com/v1 --listen 127.0.0.1:8787
    OpenAI(base_url="http://127.0.0.1:8787/v1", api_key=...)

For ``POST /v1/chat/completions`` (``stream: true`` too), ``/v1/responses`` and ``/v1/embeddings`` it

- checks the gate (:class:`~firebreak_sdk.gate.Gate`, subscribed: a kill arrives pushed) with the call's session
  and user (headers ``X-Firebreak-Session`` / ``X-Firebreak-User``, else the body's ``user``), and a ``tool_choice``
  that names a tool against the agent's allowed tools;
- keeps one :class:`~firebreak_sdk.guards.BudgetGuard` per session (caps from the gate; tokens and cost from the
  upstream's ``usage``, cost from ``--price``) and one run (trajectory) per session, ended when it is idle;
- forwards the call, and while a stream is relayed watches the gate: a kill cuts it (an SSE error event, then
  the upstream connection is closed);
- records one ``llm`` span per call (model, input messages, output text, tokens, cost, finish reason, duration).

A refused call never reaches the upstream; it is answered in OpenAI's error shape
``{"error": {"message", "type": "firebreak_gate_closed", "code": "<the stop's class>"}}`` with 403 (killed,
paused, blocked, tool not allowed or disabled), 429 (budget exceeded or frozen) or 503 (gate unreadable).
``GET /v1/models`` is passed through. Upstream key: ``FIREBREAK_UPSTREAM_API_KEY``, else the client's
``Authorization``. Firebreak credentials: ``FIREBREAK_URL``, ``FIREBREAK_API_KEY``, ``FIREBREAK_GATE_PUBLIC_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import BudgetExceeded, BudgetFrozen, FirebreakStop, GateClosed, GateUnavailable
from ..gate import Gate
from ..guards import BudgetGuard
from ..spans import Run
from ..tracer import Tracer

__all__ = ["LLMGateway", "Price", "build_parser", "error_body", "main", "parse_price", "refusal_status"]

log = logging.getLogger("firebreak_sdk.gateways.llm")

ERROR_TYPE = "firebreak_gate_closed"
SESSION_HEADER = "x-firebreak-session"
USER_HEADER = "x-firebreak-user"
# Headers of the client's request the upstream needs; everything else (hop-by-hop, X-Firebreak-*) stays here.
FORWARDED_HEADERS = ("openai-organization", "openai-project", "openai-beta", "accept", "user-agent")
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ValueError)  # ValueError: an over-long line
WATCH_INTERVAL = 0.02  # seconds: while an upstream stream is silent, how often the gate is looked at


@dataclass(frozen=True)
class Price:
    """USD per 1,000 input tokens and per 1,000 output tokens of one model."""

    input_per_1k: float
    output_per_1k: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in / 1000 * self.input_per_1k + tokens_out / 1000 * self.output_per_1k


def parse_price(text: str) -> tuple[str, Price]:
    """``"gpt-4o=0.0025,0.01"`` → ``("gpt-4o", Price(0.0025, 0.01))``; ``ValueError`` says what is wrong."""
    model, sep, prices = text.partition("=")
    parts = prices.split(",")
    if not sep or not model.strip() or len(parts) != 2:
        raise ValueError(f"price {text!r}: expected model=in_per_1k,out_per_1k")
    try:
        price = Price(float(parts[0]), float(parts[1]))
    except ValueError:
        raise ValueError(f"price {text!r}: prices must be numbers") from None
    if price.input_per_1k < 0 or price.output_per_1k < 0:
        raise ValueError(f"price {text!r}: prices must not be negative")
    return model.strip(), price


def refusal_status(stop: FirebreakStop) -> int:
    """The HTTP status a refusal is answered with: 503 gate unreadable, 429 budget, 403 every other stop."""
    if isinstance(stop, GateUnavailable):
        return 503
    if isinstance(stop, BudgetExceeded | BudgetFrozen):
        return 429
    return 403


def error_body(stop: FirebreakStop) -> dict[str, Any]:
    """OpenAI's error shape for a refusal: the openai client raises with ``message`` as its text."""
    return {"error": {"message": str(stop), "type": ERROR_TYPE, "code": type(stop).__name__, "param": None}}


def _upstream_error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "firebreak_upstream_error", "code": code, "param": None}}


def _named_tool(tool_choice: Any) -> str | None:
    """The tool a ``tool_choice`` forces (chat: ``{"type": "function", "function": {"name"}}``; responses:
    ``{"type": "function", "name"}``), or None for ``auto`` / ``none`` / ``required`` / anything else."""
    if not isinstance(tool_choice, dict):
        return None
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, dict) else tool_choice.get("name")
    return name if isinstance(name, str) and name else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


# --- what a call said: usage, output text, finish reason, per API --------------------------------------------


@dataclass
class _Outcome:
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    output: Any = None
    finish_reason: str | None = None


def _chat_outcome(data: dict[str, Any], out: _Outcome) -> None:
    usage = data.get("usage") or {}
    out.tokens_in, out.tokens_out = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    choices = data.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    out.output = message.get("content")
    if out.output is None and message.get("tool_calls"):
        out.output = message["tool_calls"]
    out.finish_reason = first.get("finish_reason")


def _responses_finish(data: dict[str, Any]) -> str | None:
    status = data.get("status")
    if status == "incomplete":
        reason = (data.get("incomplete_details") or {}).get("reason")
        return "length" if reason == "max_output_tokens" else str(reason or "incomplete")
    items = data.get("output") or []
    if any(isinstance(item, dict) and item.get("type") == "function_call" for item in items):
        return "tool_calls"
    return "stop" if status == "completed" else status


def _responses_text(data: dict[str, Any]) -> str:
    texts = []
    for item in data.get("output") or []:
        for part in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(part, dict) and part.get("type") == "output_text":
                texts.append(str(part.get("text", "")))
    return "".join(texts)


def _responses_outcome(data: dict[str, Any], out: _Outcome) -> None:
    usage = data.get("usage") or {}
    out.tokens_in, out.tokens_out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    out.output = _responses_text(data)
    out.finish_reason = _responses_finish(data)


def _embeddings_outcome(data: dict[str, Any], out: _Outcome) -> None:
    usage = data.get("usage") or {}
    out.tokens_in = _int(usage.get("prompt_tokens"))
    out.output = f"{len(data.get('data') or [])} embeddings"


_OUTCOMES: dict[str, Callable[[dict[str, Any], _Outcome], None]] = {
    "chat": _chat_outcome,
    "responses": _responses_outcome,
    "embeddings": _embeddings_outcome,
}
_INPUT_FIELD = {"chat": "messages", "responses": "input", "embeddings": "input"}


class _StreamReader:
    """Folds a relayed stream's events into an outcome. ``feed`` returns False for the usage-only chunk the
    gateway asked for itself (``stream_options.include_usage``), which the client did not ask to see."""

    def __init__(self, kind: str, hide_usage: bool) -> None:
        self.kind = kind
        self.hide_usage = hide_usage
        self.out = _Outcome()
        self.text: list[str] = []
        self.chunks = 0

    def feed(self, data: str) -> bool:
        if not data or data == "[DONE]":
            return True
        try:
            event = json.loads(data)
        except ValueError:
            return True
        if not isinstance(event, dict):
            return True
        self.chunks += 1
        if self.kind == "chat":
            self.out.model = event.get("model") or self.out.model
            choices = event.get("choices") or []
            for choice in choices:
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    self.text.append(delta["content"])
                if choice.get("finish_reason"):
                    self.out.finish_reason = choice["finish_reason"]
            if event.get("usage"):
                usage = event["usage"]
                self.out.tokens_in, self.out.tokens_out = (
                    _int(usage.get("prompt_tokens")),
                    _int(usage.get("completion_tokens")),
                )
                if not choices and self.hide_usage:
                    return False
        else:  # responses: typed events; the final one carries the whole response with its usage
            kind = event.get("type")
            if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
                self.text.append(event["delta"])
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                response = event.get("response") or {}
                _responses_outcome(response, self.out)
                self.out.model = response.get("model") or self.out.model
        return True

    def outcome(self) -> _Outcome:
        if self.text:
            self.out.output = "".join(self.text)
        return self.out


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
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/models/{model:path}", self._models, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    # --- lifecycle ----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # aiohttp, not httpx, for the upstream: measured here, httpx's async stack cost ~2 ms per call on a busy
        # 2-core machine, a few times aiohttp's, and the gateway's budget is 2 ms p99 (bench/llm_gateway.py).
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout, connect=10.0),
            connector=aiohttp.TCPConnector(limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),  # an upstream's cookies are not shared between the agent's calls
            read_bufsize=2**22,  # a stream's event is one line: a whole response.completed can be long
        )
        sweeper = asyncio.create_task(self._sweep())
        try:
            yield
        finally:
            sweeper.cancel()
            for key in list(self.sessions):
                self._end_session(key)
            await self._client.close()
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
            return JSONResponse(_upstream_error(f"upstream unreachable: {exc!r}", "upstream_unreachable"), 502)
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
        tool = _named_tool(body.get("tool_choice"))
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
            self._record(held, kind, body, _Outcome(), started, error=f"upstream unreachable: {exc!r}")
            return JSONResponse(_upstream_error(f"upstream unreachable: {exc!r}", "upstream_unreachable"), 502)
        out = _Outcome()
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        ok = 200 <= status < 300
        if isinstance(data, dict):
            out.model = data.get("model") if isinstance(data.get("model"), str) else None
            if ok:
                _OUTCOMES[kind](data, out)
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
            self._record(held, kind, body, _Outcome(), started, error=f"upstream unreachable: {exc!r}")
            return JSONResponse(_upstream_error(f"upstream unreachable: {exc!r}", "upstream_unreachable"), 502)
        if not 200 <= resp.status < 300:
            try:
                content = await resp.read()
            finally:
                resp.release()
            error = f"upstream answered {resp.status}: {content[:500].decode(errors='replace')}"
            self._record(held, kind, body, _Outcome(), started, error=error)
            return Response(content, resp.status, media_type=resp.headers.get("content-type"))
        reader = _StreamReader(kind, hide_usage)
        relay = self._relay(resp, reader, held, kind, body, session, user, started)
        return StreamingResponse(relay, media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _relay(
        self,
        resp: aiohttp.ClientResponse,
        reader: _StreamReader,
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
            yield f"data: {json.dumps(_upstream_error(error, 'upstream_stream_failed'))}\n\n".encode()
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
        out: _Outcome,
        started: float,
        *,
        error: str | None = None,
        stop: GateClosed | None = None,
    ) -> None:
        """The call's usage counted against the session's budget, and its span."""
        self._span(held, kind, body, out, *self._count(held, body, out), time.monotonic() - started, error, stop)

    def _count(self, held: _Session, body: dict[str, Any], out: _Outcome) -> tuple[str | None, float]:
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
        out: _Outcome,
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
            input=body.get(_INPUT_FIELD[kind]),
            output=out.output,
            tokens_in=out.tokens_in,
            tokens_out=out.tokens_out,
            cost=cost,
            finish_reason=out.finish_reason,
            error=error,
            duration=duration,
            attributes=attributes,
        )


# --- the command ------------------------------------------------------------------------------------------


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8787")
    return host or "127.0.0.1", int(port)


def _price(text: str) -> tuple[str, Price]:
    try:
        return parse_price(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firebreak-llm-gateway",
        description="An OpenAI-compatible proxy that checks the agent's Firebreak gate and budget before every "
        "model call, cuts streams when the agent is killed and records an LLM span per call. Credentials: "
        "FIREBREAK_URL, FIREBREAK_API_KEY, FIREBREAK_GATE_PUBLIC_KEY; upstream key: FIREBREAK_UPSTREAM_API_KEY "
        "(else the client's Authorization is passed through).",
    )
    parser.add_argument("--agent", required=True, help="the agent's slug in Firebreak")
    parser.add_argument(
        "--upstream", required=True, help="the model API's OpenAI base URL, e.g. https://api.openai.com/v1"
    )
    parser.add_argument(
        "--listen", type=_listen, default=("127.0.0.1", 8787), help="HOST:PORT (default 127.0.0.1:8787)"
    )
    parser.add_argument(
        "--price",
        type=_price,
        action="append",
        default=[],
        metavar="MODEL=IN_PER_1K,OUT_PER_1K",
        help="USD per 1,000 input and output tokens of a model, for the budget's cost (repeat; default 0)",
    )
    parser.add_argument("--session-idle", type=float, default=600.0, help="seconds before an idle session's run ends")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds an upstream call may take")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.upstream.startswith(("http://", "https://")):
        parser.error(
            f"--upstream {args.upstream!r}: expected an http:// or https:// URL, e.g. https://api.openai.com/v1"
        )
    if args.session_idle <= 0 or args.timeout <= 0:
        parser.error("--session-idle and --timeout must be more than 0 seconds")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per span batch otherwise
    gate = Gate.from_env(args.agent)
    tracer = Tracer.from_env(args.agent)
    gateway = LLMGateway(
        gate=gate,
        tracer=tracer,
        upstream=args.upstream,
        prices=dict(args.price),
        upstream_api_key=os.environ.get("FIREBREAK_UPSTREAM_API_KEY") or None,
        session_idle=args.session_idle,
        timeout=args.timeout,
    )
    host, port = args.listen
    config = uvicorn.Config(gateway.app, host=host, port=port, log_level="warning", access_log=False)
    log.info("firebreak-llm-gateway for %s: http://%s:%d/v1 → %s", args.agent, host, port, gateway.upstream)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
