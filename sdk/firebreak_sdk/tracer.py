"""Tracing: send an agent's runs to Firebreak as spans.

Two paths:

- :class:`Tracer` — for an agent without OpenTelemetry. ``with tracer.run(...) as run:`` opens the
  root ``agent`` span; ``run.llm(...)``, ``run.tool(...)`` and ``with run.step(...)`` record its steps.
  Finished spans go into a bounded in-memory buffer; a daemon thread sends them in batches to
  ``POST {url}/api/v1/ingest`` (the native JSON format).
- :func:`configure_opentelemetry` — for an agent that already uses OpenTelemetry: adds an OTLP/HTTP
  exporter to Firebreak's ``/v1/traces`` to its ``TracerProvider``.

Tracing fails *open*, unlike the gate: the agent is never blocked and never sees an exception
because Firebreak is slow, down or refusing spans. When the buffer is full, new spans are dropped
and counted (``tracer.dropped``); batches the server will not take are logged and counted
(``tracer.failed``). Ingest is idempotent on (trace id, span id), so a batch retried after a
timeout is stored once.
"""

from __future__ import annotations

import atexit
import email.utils
import functools
import json
import logging
import math
import os
import random
import secrets
import threading
import time
import weakref
from collections import deque
from datetime import datetime, timezone
from typing import Any

import httpx

from .errors import GateClosed

__all__ = ["Run", "Step", "Tracer", "configure_opentelemetry"]

log = logging.getLogger("firebreak_sdk.tracer")

KINDS = frozenset({"llm", "tool", "retrieval", "decision", "agent", "other"})
STATUSES = frozenset({"unset", "ok", "error"})
MAX_SPANS_PER_BATCH = 10_000  # the server's limit per request
MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under the server's default body limit (16 MiB)
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is shortened to this
_INT_MAX = 2**31 - 1
_COST_MAX = 99_999_999.0
# The server's length limits (characters): longer values are cut, and the span's attributes say so.
_TEXT_LIMITS = {
    "name": 500,
    "session_id": 200,
    "user_id": 200,
    "input_class": 200,
    "model": 200,
    "model_version": 200,
    "prompt_version": 200,
    "agent_name": 200,
    "tool_name": 200,
    "finish_reason": 50,
    "error_message": 10_000,
    "input": 1_000_000,
    "output": 1_000_000,
}


# --- encoding: every span the SDK sends is valid, so one odd value never costs a whole batch ------------


def _iso(ns: int) -> str:
    """Epoch nanoseconds as ISO 8601 in UTC with microseconds and an offset."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rest // 1000)
    return moment.isoformat(timespec="microseconds")


def _jsonable(value: Any, active: set[int] | None = None, depth: int = 0) -> Any:
    """A copy that ``json.dumps`` accepts: string keys, finite numbers, no cycles, anything else as ``str``."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    active = active if active is not None else set()
    if id(value) in active or depth > 64:
        return "<cycle>" if id(value) in active else "<too deep>"
    if isinstance(value, dict | list | tuple | set | frozenset):
        active.add(id(value))
        try:
            if isinstance(value, dict):
                return {str(k): _jsonable(v, active, depth + 1) for k, v in value.items()}
            return [_jsonable(v, active, depth + 1) for v in value]
        finally:
            active.discard(id(value))
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError):
        return _dumps(_jsonable(value))


def _describe(error: Any) -> str:
    if isinstance(error, BaseException):
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)


def _count(value: Any) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(n, 0), _INT_MAX)


def _cost(value: Any) -> float | None:
    try:
        c = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(c) or c < 0:
        return None
    return round(min(c, _COST_MAX), 6)


def encode_span(fields: dict[str, Any]) -> bytes:
    """One native span as UTF-8 JSON, made valid for the server: texts cut to its limits (the span's
    ``attributes["firebreak.truncated"]`` lists them), counts clamped, a bad cost left out, tool arguments
    and attributes made JSON-safe. ``None`` values are left out."""
    span: dict[str, Any] = {}
    truncated = []
    for key, value in fields.items():
        if value is None:
            continue
        if key in _TEXT_LIMITS:
            text = _text(value)
            if len(text) > _TEXT_LIMITS[key]:
                text = text[: _TEXT_LIMITS[key]]
                truncated.append(key)
            span[key] = text
        elif key in ("tokens_in", "tokens_out"):
            if (n := _count(value)) is not None:
                span[key] = n
        elif key == "cost":
            if (c := _cost(value)) is not None:
                span[key] = c
        elif key == "tool_arguments":
            if isinstance(value, tuple | set | frozenset):
                value = list(value)
            span[key] = value if isinstance(value, dict | list) else {"value": value}
        elif key == "attributes":
            span[key] = dict(value) if isinstance(value, dict) else {"value": value}
        else:  # ids, times, kind, status, trace_status, agent: produced by this module, already valid
            span[key] = value
    if not span.get("name"):
        span["name"] = span.get("kind", "span")
    if truncated:
        span["attributes"] = {**span.get("attributes", {}), "firebreak.truncated": truncated}
    try:
        text = _dumps(span)
    except (TypeError, ValueError, RecursionError):
        for key in ("tool_arguments", "attributes"):
            if key in span:
                span[key] = _jsonable(span[key])
        text = _dumps(span)
    return text.encode("utf-8", "replace")  # a lone surrogate becomes "?", not an undecodable body


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _error_text(response: httpx.Response) -> str:
    if response.is_redirect:  # not followed: a POST must not silently turn into a GET
        return f"redirected to {response.headers.get('location')!r}; set FIREBREAK_URL to the final address"
    try:
        return str(response.json()["error"])
    except Exception:
        return response.text[:500]


# --- the span API -----------------------------------------------------------------------------------------


class _Span:
    """What a run and its steps share: identity, timing, the fields the server stores, and child steps."""

    kind = "other"

    def __init__(
        self,
        tracer: Tracer,
        trace_id: str,
        parent_span_id: str | None,
        name: str,
        *,
        start_ns: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self._tracer = tracer
        self.trace_id = trace_id
        self.span_id = secrets.token_hex(8)
        self.parent_span_id = parent_span_id
        self.name = name
        self.input: Any = None
        self.output: Any = None
        self.status: str | None = None  # None: "error" if an error was recorded, else "ok"
        self.error: Any = None  # an exception or a message
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.ended = False
        self._start_ns = start_ns if start_ns is not None else time.time_ns()
        self._start_mono = time.monotonic_ns()

    # children ---------------------------------------------------------------------------------------------

    def step(
        self,
        kind: str = "other",
        name: str | None = None,
        *,
        tool: str | None = None,
        arguments: Any = None,
        model: str | None = None,
        input: Any = None,
        agent_name: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Step:
        """Start a child step; use it as a context manager (``with run.step("tool", tool="x") as s:``), or call
        :meth:`Step.end`. It is timed from now until it ends; an exception inside ``with`` marks it ``error``.
        ``kind``: llm, tool, retrieval, decision, agent or other."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(sorted(KINDS))}, not {kind!r}")
        step = Step(self._tracer, self.trace_id, self.span_id, name or tool or model or agent_name or kind, kind=kind)
        step.tool = tool if tool is not None else (name if kind == "tool" else None)
        step.arguments = arguments
        step.model = model
        step.input = input
        step.agent_name = agent_name
        step.attributes.update(attributes or {})
        return step

    def llm(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        input: Any = None,
        output: Any = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        cost: float | None = None,
        finish_reason: str | None = None,
        status: str | None = None,
        error: Any = None,
        duration: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Step:
        """Record a model call that just finished (``duration``: the seconds it took, if known)."""
        step = self._finished("llm", name or model or "llm", duration, status, attributes)
        step.model, step.input, step.output = model, input, output
        step.tokens_in, step.tokens_out, step.cost, step.finish_reason = tokens_in, tokens_out, cost, finish_reason
        step.end(error=error)
        return step

    def tool(
        self,
        name: str,
        arguments: Any = None,
        *,
        output: Any = None,
        status: str | None = None,
        error: Any = None,
        duration: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Step:
        """Record a tool call that just finished: tool ``name``, its ``arguments`` (an object or array), its
        ``output``; ``error`` (an exception or a message) marks it failed."""
        step = self._finished("tool", name, duration, status, attributes)
        step.tool, step.arguments, step.output = name, arguments, output
        step.end(error=error)
        return step

    def _finished(
        self, kind: str, name: str, duration: float | None, status: str | None, attributes: dict[str, Any] | None
    ) -> Step:
        now = time.time_ns()
        start = now
        if duration is not None:
            try:
                start = now - max(0, int(float(duration) * 1e9))
            except (TypeError, ValueError, OverflowError):
                start = now
            start = max(start, self._start_ns)  # a step does not start before its parent
        step = Step(self._tracer, self.trace_id, self.span_id, name, kind=kind, start_ns=start, attributes=attributes)
        step._end_ns = now
        step.status = status
        return step

    # ending -------------------------------------------------------------------------------------------------

    def set_error(self, error: Any) -> None:
        """Mark this span failed (an exception or a message) without raising, e.g. after catching a stop."""
        self.error = error
        self.status = "error"

    def end(self, *, status: str | None = None, error: Any = None) -> None:
        """End the span and hand it to the tracer (once; later calls do nothing). Never raises for I/O."""
        if self.ended:
            return
        if error is not None:
            self.set_error(error)
        if status is not None:
            self.status = status
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"status must be one of ok, error, unset, not {self.status!r}")
        self.ended = True
        try:
            end_ns = getattr(self, "_end_ns", None)
            if end_ns is None:  # the monotonic clock times the span: a wall-clock step cannot make it end early
                end_ns = self._start_ns + max(0, time.monotonic_ns() - self._start_mono)
            fields = {
                "trace_id": self.trace_id,
                "span_id": self.span_id,
                "parent_span_id": self.parent_span_id,
                "name": self.name,
                "start_time": _iso(self._start_ns),
                "end_time": _iso(max(end_ns, self._start_ns)),
                "agent": self._tracer.agent,
                "kind": self.kind,
                "status": self.status or ("error" if self.error is not None else "ok"),
                "error_message": _describe(self.error) if self.error is not None else None,
                "input": self.input,
                "output": self.output,
                "attributes": self.attributes or None,
                **self._fields(),
            }
            data = encode_span(fields)
        except Exception:
            log.exception("firebreak tracer: could not encode span %s; dropped", self.name)
            self._tracer._count_dropped()
            return
        self._tracer._emit(data)

    def _fields(self) -> dict[str, Any]:
        return {}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None:
            self._on_exception(exc)
        self.end()
        return False

    def _on_exception(self, exc: BaseException) -> None:
        self.set_error(exc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.name!r} {self.trace_id}/{self.span_id}>"


class Step(_Span):
    """One step of a run (a model call, a tool call, ...). Set its fields before it ends:
    ``output``, ``tokens_in``, ``tokens_out``, ``cost``, ``finish_reason``, ``model``, ``tool``, ``arguments``,
    ``input``, ``agent_name``, ``attributes``, ``status``, ``error``. Steps can have child steps."""

    def __init__(self, tracer: Tracer, trace_id: str, parent_span_id: str, name: str, *, kind: str, **kwargs) -> None:
        super().__init__(tracer, trace_id, parent_span_id, name, **kwargs)
        self.kind = kind
        self.tool: str | None = None
        self.arguments: Any = None
        self.model: str | None = None
        self.agent_name: str | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cost: float | None = None
        self.finish_reason: str | None = None

    def __enter__(self) -> Step:
        return self

    def _fields(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool,
            "tool_arguments": self.arguments,
            "model": self.model,
            "agent_name": self.agent_name,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": self.cost,
            "finish_reason": self.finish_reason,
        }


class Run(_Span):
    """The root ``agent`` span of one run (one trajectory in Firebreak). Set ``run.output`` to the answer.

    On an exception inside ``with tracer.run(...)`` the run ends with status ``error``; on a
    :class:`~firebreak_sdk.errors.GateClosed` (killed, paused, tool disabled, frozen, gate unreadable) the
    trajectory is marked ``killed``. An agent that catches the stop itself calls :meth:`set_error` with it.
    """

    kind = "agent"

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        input_class: str | None = None,
        input: Any = None,
        prompt_version: str | None = None,
        model_version: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(tracer, secrets.token_hex(16), None, name, attributes=attributes)
        self.session_id = session_id
        self.user_id = user_id
        self.input_class = input_class
        self.input = input
        self.prompt_version = prompt_version
        self.model_version = model_version
        self.trace_status: str | None = None  # "killed" after a GateClosed; otherwise from the root's status

    def __enter__(self) -> Run:
        return self

    def set_error(self, error: Any) -> None:
        """Mark the run failed; with a :class:`~firebreak_sdk.errors.GateClosed` the trajectory becomes ``killed``."""
        super().set_error(error)
        if isinstance(error, GateClosed):
            self.trace_status = "killed"

    def _fields(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "input_class": self.input_class,
            "prompt_version": self.prompt_version,
            "model_version": self.model_version,
            "trace_status": self.trace_status,
        }


# --- the tracer --------------------------------------------------------------------------------------------


class Tracer:
    """Sends an agent's spans to Firebreak's native ingest from a background daemon thread.

    ``max_buffer`` spans (and at most ``max_buffer_bytes`` of encoded spans) wait in memory; when the buffer
    is full new spans are dropped — the agent never waits for Firebreak — and counted in :attr:`dropped`.
    A batch (up to ``batch_size`` spans) goes out when that many are waiting or the oldest has waited
    ``flush_interval`` seconds. 429, 5xx and connection errors are retried up to ``max_retries`` times with
    exponential backoff and jitter (a ``Retry-After`` is honoured); other 4xx answers are not retried. A batch
    given up on is logged (with the server's error text) and counted in :attr:`failed`; :attr:`sent` counts
    delivered spans. ``timeout`` bounds each request (seconds).

    Without a URL or key the tracer is disabled: the span API works and every span counts as dropped.
    :meth:`close` (also run at interpreter exit) sends what is buffered and stops the thread.
    """

    BACKOFF_BASE = 0.5  # seconds before the first retry; doubles each time, with jitter
    BACKOFF_MAX = 30.0

    def __init__(
        self,
        agent: str,
        *,
        url: str | None = None,
        api_key: str | None = None,
        http_client: httpx.Client | None = None,
        max_buffer: int = 10_000,
        batch_size: int = 512,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        max_retries: int = 5,
        max_buffer_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if not agent:
            raise ValueError("agent slug is required")
        if max_buffer < 1 or max_buffer_bytes < 1:
            raise ValueError("max_buffer and max_buffer_bytes must be at least 1")
        if not 1 <= batch_size <= MAX_SPANS_PER_BATCH:
            raise ValueError(f"batch_size must be from 1 to {MAX_SPANS_PER_BATCH}")
        if flush_interval <= 0 or timeout <= 0 or max_retries < 0:
            raise ValueError("flush_interval and timeout must be > 0 and max_retries >= 0")
        self.agent = agent
        self.url = url.rstrip("/") if url else None
        self.endpoint = f"{self.url}/api/v1/ingest" if self.url else None
        self.max_buffer = max_buffer
        self.max_buffer_bytes = max_buffer_bytes
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.max_retries = max_retries
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "firebreak-sdk-python",
        }
        self._given_client = http_client
        self._client: httpx.Client | None = None
        self.enabled = bool(self.endpoint and api_key)
        if not self.enabled:
            missing = "FIREBREAK_URL / url=" if not self.endpoint else "FIREBREAK_API_KEY / api_key="
            log.warning("firebreak tracer for %s is disabled (no %s): spans are dropped", agent, missing)
        self._init_state()
        self._closed = False
        if self.enabled:
            atexit.register(self.close)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))
            with self._cond:
                self._start_worker()

    def _init_state(self) -> None:
        """Buffer, lock and worker state (again in a forked child: the parent's thread does not exist there)."""
        self._cond = threading.Condition(threading.Lock())
        self._buffer: deque[bytes] = deque()
        self._buffer_bytes = 0
        self._oldest_at = 0.0  # monotonic time the oldest buffered span arrived
        self._in_flight = 0
        self._flush_requested = False
        self._closing = False
        self._abandon = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_full = False
        if self._given_client is None and self._client is not None:
            self._client = None  # a forked child must not share the parent's connections

    @classmethod
    def from_env(cls, agent: str, **kwargs: Any) -> Tracer:
        """A tracer configured from ``FIREBREAK_URL`` and ``FIREBREAK_API_KEY``; keyword arguments win."""
        kwargs.setdefault("url", os.environ.get("FIREBREAK_URL") or None)
        kwargs.setdefault("api_key", os.environ.get("FIREBREAK_API_KEY") or None)
        return cls(agent, **kwargs)

    # --- the span API ------------------------------------------------------------------------------------

    def run(
        self,
        name: str | None = None,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        input_class: str | None = None,
        input: Any = None,
        prompt_version: str | None = None,
        model_version: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Run:
        """Start a run: a new trace and its root ``agent`` span (named ``name``, by default the agent's slug).
        Use it as a context manager, or call :meth:`Run.end`."""
        return Run(
            self,
            name or self.agent,
            session_id=session_id,
            user_id=user_id,
            input_class=input_class,
            input=input,
            prompt_version=prompt_version,
            model_version=model_version,
            attributes=attributes,
        )

    # --- state -------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Spans buffered or being sent."""
        with self._cond:
            return len(self._buffer) + self._in_flight

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Send everything buffered now and wait until it is sent or given up on (``timeout`` seconds, None:
        no limit). True if nothing is left pending."""
        if not self.enabled:
            return True
        if threading.current_thread() is self._thread:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._buffer or self._in_flight:
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush (up to ``timeout`` seconds), then stop the thread. Spans still unsent count as failed; spans
        recorded after closing are dropped. Idempotent; also runs at interpreter exit."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        if not self.enabled:
            return
        started = time.monotonic()
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._abandon = not flushed
            left = len(self._buffer)
            self._buffer.clear()
            self._buffer_bytes = 0
            self.failed += left
            self._cond.notify_all()
        self._stop.set()
        if left:
            log.warning("firebreak tracer: closed with %d spans unsent", left)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(0.05, timeout - (time.monotonic() - started)))
            if not thread.is_alive() and self._given_client is None and self._client is not None:
                self._client.close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.endpoint if self.enabled else "disabled"
        return f"<Tracer {self.agent} → {where}: sent={self.sent} failed={self.failed} dropped={self.dropped}>"

    # --- the agent's side: never blocks, never raises ------------------------------------------------------

    def _count_dropped(self) -> None:
        with self._cond:
            self.dropped += 1

    def _emit(self, data: bytes) -> bool:
        """Buffer one encoded span, or drop it (counted) when disabled, closed or full."""
        warn = False
        with self._cond:
            if (
                not self.enabled
                or self._closed
                or len(self._buffer) >= self.max_buffer
                or self._buffer_bytes + len(data) > self.max_buffer_bytes
            ):
                self.dropped += 1
                if self.enabled and not self._closed and not self._warned_full:
                    self._warned_full = warn = True
                accepted = False
            else:
                if not self._buffer:
                    self._oldest_at = time.monotonic()
                self._buffer.append(data)
                self._buffer_bytes += len(data)
                if self._thread is None:
                    self._start_worker()
                if len(self._buffer) == self.batch_size:
                    self._cond.notify_all()
                accepted = True
        if warn:
            log.warning(
                "firebreak tracer: buffer full (%d spans); dropping new spans until Firebreak catches up",
                self.max_buffer,
            )
        return accepted

    # --- the worker thread -------------------------------------------------------------------------------

    def _start_worker(self) -> None:  # holding self._cond
        self._thread = threading.Thread(target=self._work, name=f"firebreak-tracer-{self.agent}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception:  # a bug must not kill the thread: count the batch and carry on
                log.exception("firebreak tracer: unexpected error sending %d spans", len(batch))
                with self._cond:
                    self.failed += len(batch)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _next_batch(self) -> list[bytes] | None:
        """Wait until a batch is due (full, flush asked, closing, or the oldest span waited flush_interval)."""
        with self._cond:
            while True:
                if self._abandon:
                    return None
                if not self._buffer:
                    if self._closing:
                        return None
                    self._cond.wait(self.flush_interval)
                    continue
                due = self._oldest_at + self.flush_interval - time.monotonic()
                if len(self._buffer) >= self.batch_size or self._flush_requested or self._closing or due <= 0:
                    break
                self._cond.wait(due)
            batch: list[bytes] = []
            size = 0
            while self._buffer and len(batch) < self.batch_size:
                if batch and size + len(self._buffer[0]) > MAX_BATCH_BYTES:
                    break
                data = self._buffer.popleft()
                batch.append(data)
                size += len(data)
            self._buffer_bytes -= size
            self._in_flight = len(batch)
            if self._buffer:
                self._oldest_at = time.monotonic()
            else:
                self._flush_requested = False
                self._warned_full = False  # caught up: warn again if it fills up again
            return batch

    def _http(self) -> httpx.Client:
        if self._given_client is not None:
            return self._given_client
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def _deliver(self, batch: list[bytes]) -> None:
        """POST one batch; retry 429, 5xx and connection errors; split it on 413; count the outcome."""
        body = b'{"spans":[' + b",".join(batch) + b"]}"
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self._http().post(self.endpoint, content=body, headers=self._headers, timeout=self.timeout)
            except Exception as exc:  # connection refused, timeout, TLS, closed client, ...
                status, detail = None, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    with self._cond:
                        self.sent += len(batch)
                    return
                detail = f"HTTP {status}: {_error_text(response)}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
            if status == 413 and len(batch) > 1:  # too large for this server: send it in halves
                half = len(batch) // 2
                self._deliver(batch[:half])
                self._deliver(batch[half:])
                return
            if status is not None and status != 429 and status < 500:
                self._give_up(batch, f"the server refused them, {detail}", logging.ERROR)
                return
            if attempt >= self.max_retries or self._abandon:
                self._give_up(batch, f"{detail} (after {attempt + 1} attempts)", logging.WARNING)
                return
            if retry_after is None:
                retry_after = min(self.BACKOFF_MAX, self.BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            log.debug("firebreak tracer: %s; retry %d in %.2f s", detail, attempt, retry_after)
            self._stop.wait(retry_after)
            if self._abandon:
                self._give_up(batch, f"{detail} (closing)", logging.WARNING)
                return

    def _give_up(self, batch: list[bytes], reason: str, level: int) -> None:
        with self._cond:
            self.failed += len(batch)
        log.log(level, "firebreak tracer: %d spans not sent to %s: %s", len(batch), self.endpoint, reason)


def _after_fork(ref: weakref.ReferenceType[Tracer]) -> None:
    """In a forked child: fresh lock, empty buffer (the parent sends what it held), a new thread on first use."""
    tracer = ref()
    if tracer is not None and tracer.enabled:
        tracer._init_state()


# --- OpenTelemetry -----------------------------------------------------------------------------------------


def configure_opentelemetry(
    agent: str,
    *,
    url: str | None = None,
    api_key: str | None = None,
    tracer_provider: Any = None,
    max_queue_size: int = 16_384,
    max_export_batch_size: int = 512,
) -> Any:
    """Export an OpenTelemetry agent's spans to Firebreak's ``POST {url}/v1/traces`` (OTLP/HTTP protobuf).

    Adds a ``BatchSpanProcessor`` with an ``OTLPSpanExporter`` to ``tracer_provider``, else to the global
    SDK ``TracerProvider``, else to a new one (resource ``firebreak.agent=<agent>``, and ``service.name=<agent>``
    unless one is configured) that it installs as the global provider. Returns the provider.

    ``max_queue_size`` defaults to 16,384 because the SDK's default (2,048) drops a burst of spans — an agent
    loop emits hundreds per second — silently. ``url`` and ``api_key`` default to ``FIREBREAK_URL`` and
    ``FIREBREAK_API_KEY``. Needs the ``otel`` extra: ``pip install 'firebreak-sdk[otel]'``.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError(
            "configure_opentelemetry needs the packages opentelemetry-sdk and "
            "opentelemetry-exporter-otlp-proto-http: pip install 'firebreak-sdk[otel]' "
            f"(import failed: {exc})"
        ) from exc
    if not agent:
        raise ValueError("agent slug is required")
    url = url or os.environ.get("FIREBREAK_URL") or None
    api_key = api_key or os.environ.get("FIREBREAK_API_KEY") or None
    if not url or not api_key:
        raise ValueError(
            "Firebreak is not configured: set FIREBREAK_URL and FIREBREAK_API_KEY, or pass url= and api_key="
        )
    if not 1 <= max_export_batch_size <= min(max_queue_size, MAX_SPANS_PER_BATCH):
        raise ValueError(f"max_export_batch_size must be from 1 to max_queue_size (and at most {MAX_SPANS_PER_BATCH})")
    provider = tracer_provider
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            resource = Resource.create({"firebreak.agent": agent})
            if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
                resource = resource.merge(Resource({"service.name": agent}))
            provider = TracerProvider(resource=resource)
            trace.set_tracer_provider(provider)
    elif not hasattr(provider, "add_span_processor"):
        raise TypeError(f"tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, not {provider!r}")
    exporter = OTLPSpanExporter(endpoint=f"{url.rstrip('/')}/v1/traces", headers={"Authorization": f"Bearer {api_key}"})
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=max_queue_size, max_export_batch_size=max_export_batch_size)
    )
    return provider
