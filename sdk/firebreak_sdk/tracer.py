"""Tracing: send an agent's runs to Firebreak as spans. This module owns the :class:`Tracer`: its buffer,
the worker thread that batches, sends and retries, and what happens at exit and after a fork.

Two paths:

- :class:`Tracer` — for an agent without OpenTelemetry. ``with tracer.run(...) as run:`` opens the
  root ``agent`` span; ``run.llm(...)``, ``run.tool(...)`` and ``with run.step(...)`` record its steps.
  Finished spans go into a bounded in-memory buffer; a daemon thread sends them in batches to
  ``POST {url}/api/v1/ingest`` (the native JSON format). The span objects are in ``spans.py``, their
  encoding in ``encode.py``.
- :func:`configure_opentelemetry` (``otel.py``) — for an agent that already uses OpenTelemetry: adds an OTLP/HTTP
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
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import deque
from datetime import datetime, timezone
from typing import Any

import httpx

from .encode import MAX_BATCH_BYTES, MAX_SPANS_PER_BATCH, encode_batch
from .otel import configure_opentelemetry
from .spans import Run, Step

# Run, Step and configure_opentelemetry live in spans.py and otel.py; they are still importable from here.
__all__ = ["Run", "Step", "Tracer", "configure_opentelemetry"]

log = logging.getLogger("firebreak_sdk.tracer")

INGEST_PATH = "/api/v1/ingest"  # the server's native ingest endpoint, under the Firebreak URL
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is shortened to this
# What the OTLP/HTTP specification retries (and what Firebreak answers to a retryable fault); a 500 is not.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


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
        self.endpoint = f"{self.url}{INGEST_PATH}" if self.url else None
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
        """POST one batch; retry what OTLP/HTTP retries (429, 502, 503, 504 and connection errors, honouring
        Retry-After); split it on 413; give up on anything else (a 400 or a 500 will not change); count it."""
        assert self.endpoint is not None  # the worker runs only in an enabled tracer, which has an endpoint
        body = encode_batch(batch)
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
            if status is not None and status not in RETRYABLE_STATUSES:
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
