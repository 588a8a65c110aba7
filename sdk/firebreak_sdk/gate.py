"""The gate: a fail-closed check an agent makes before every step and every tool call.

The server keeps each agent's gate document in Redis (``firebreak:gate:<slug>``),
publishes every change on ``firebreak:gate-events:<slug>`` and serves it at
``GET /api/v1/agents/<slug>/gate``. :class:`Gate` reads it over direct Redis or
HTTP, keeps a local copy for at most ``max_staleness`` seconds, and raises a
:class:`~firebreak_sdk.errors.GateClosed` when the agent must stop — including
when the gate cannot be read at all.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast, overload
from urllib.parse import quote

import httpx
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import AgentKilled, AgentPaused, BudgetFrozen, GateUnavailable, ToolDisabled

__all__ = ["GENERIC_FALLBACK", "Gate"]

F = TypeVar("F", bound=Callable[..., Any])

GENERIC_FALLBACK = "This assistant is temporarily unavailable. A person will follow up with you shortly."
# Where the server keeps and publishes the gate (agents/gate.py), and the document's fields this module reads.
# tests/sdk/test_contract.py fails when one side changes without the other.
GATE_KEY = "firebreak:gate:{slug}"  # Redis: the agent's gate document (JSON)
GATE_CHANNEL = "firebreak:gate-events:{slug}"  # Redis pub/sub: every new document
GATE_PATH = "/api/v1/agents/{slug}/gate"  # HTTP, under the Firebreak URL
STATES = frozenset({"active", "paused", "killed"})
BUDGET_CAPS = ("session_cost_cap", "daily_cost_cap", "session_token_cap", "session_step_cap")
BUDGET_FIELDS = ("frozen", *BUDGET_CAPS)
DOCUMENT_FIELDS = frozenset(
    {
        "agent",
        "state",
        "reason",
        "changed_by",
        "version",
        "disabled_tools",
        "budget",
        "fleet_stopped",
        "fallback_message",
    }
)
_MIN_POLL = 0.05  # seconds between re-reads while waiting out a pause without a subscription


class _Unreadable(Exception):
    """A transport could not produce a gate document; the message says why."""


class _Snapshot:
    """One accepted gate document, pre-digested for the hot path. Immutable: replaced, never changed."""

    __slots__ = ("at", "disabled", "doc", "etag", "frozen", "open", "raw", "state", "version")

    def __init__(self, doc: dict[str, Any], raw: bytes | str, etag: str | None, at: float) -> None:
        self.doc = doc
        self.raw = raw
        self.at = at
        self.version: int = doc["version"]
        self.etag = etag or f'"{self.version}"'
        self.state: str = doc["state"]
        self.disabled = frozenset(doc.get("disabled_tools") or ())
        self.frozen = bool((doc.get("budget") or {}).get("frozen"))
        self.open = self.state == "active" and not doc.get("fleet_stopped")

    def touched(self, at: float) -> _Snapshot:
        return _Snapshot(self.doc, self.raw, self.etag, at)


def parse_document(raw: bytes | str, agent: str) -> dict[str, Any]:
    """Decode and validate a gate document; raise ``ValueError`` saying what is wrong."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("agent") not in (None, agent):
        raise ValueError(f"document is for agent {doc.get('agent')!r}")
    if doc.get("state") not in STATES:
        raise ValueError(f"unknown state {doc.get('state')!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"version {version!r} is not an integer")
    tools = doc.get("disabled_tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise ValueError("disabled_tools is not a list of tool names")
    budget = doc.get("budget") or {}
    if not isinstance(budget, dict):
        raise ValueError("budget is not an object")
    for cap in BUDGET_CAPS:
        value = budget.get(cap)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0
        ):
            raise ValueError(f"budget.{cap} is {value!r}, not a non-negative number or null")
    return doc


class _RedisTransport:
    name = "redis"

    def __init__(self, agent: str, client: redis.Redis, owned: bool) -> None:
        self.client = client
        self.owned = owned
        self.key = GATE_KEY.format(slug=agent)
        self.channel = GATE_CHANNEL.format(slug=agent)

    def fetch(self, etag: str | None) -> tuple[bytes | str | None, str | None]:
        raw = self.client.get(self.key)
        if raw is None:
            raise _Unreadable(f"Redis key {self.key} does not exist")
        return cast(bytes, raw), None

    def close(self) -> None:
        if self.owned:
            self.client.close()


class _HttpTransport:
    name = "http"

    def __init__(self, agent: str, url: str, api_key: str | None, client: httpx.Client | None, timeout: float) -> None:
        self.url = url.rstrip("/") + GATE_PATH.format(slug=quote(agent, safe=""))
        self.api_key = api_key
        self.owned = client is None
        self.client = client if client is not None else httpx.Client(timeout=timeout)
        self.timeout = timeout

    def fetch(self, etag: str | None) -> tuple[bytes | str | None, str | None]:
        """The document's bytes and ETag, or ``(None, etag)`` when the server answers 304 Not Modified."""
        if not self.api_key:
            raise _Unreadable("no API key (set FIREBREAK_API_KEY or pass api_key=)")
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        response = self.client.get(self.url, headers=headers, timeout=self.timeout)
        if response.status_code == 304 and etag:
            return None, etag
        if response.status_code != 200:
            try:
                detail = str(response.json()["error"])
            except Exception:
                detail = response.text[:200]
            raise _Unreadable(f"GET {self.url} answered HTTP {response.status_code}: {detail}")
        return response.content, response.headers.get("etag")

    def close(self) -> None:
        if self.owned:
            self.client.close()


class Gate:
    """An agent's gate. Call :meth:`check` before every step and :meth:`check` with ``tool=`` before every tool call.

    Transport: direct Redis when ``redis_client`` or ``redis_url`` is given, else HTTP to ``url`` with
    ``api_key``. It fails closed: whenever the gate cannot be read, checks raise
    :class:`~firebreak_sdk.errors.GateUnavailable`. A local copy is trusted for at most ``max_staleness``
    seconds; with Redis and ``subscribe=True`` a daemon thread also listens for changes, so a kill lands
    within milliseconds. ``timeout`` bounds each read (seconds).

    ``on_pause="raise"`` raises :class:`~firebreak_sdk.errors.AgentPaused` at once; ``"wait"`` blocks the
    calling thread until the agent is resumed (returns), killed (raises) or ``pause_timeout`` passes (raises).
    """

    def __init__(
        self,
        agent: str,
        *,
        redis_url: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        redis_client: redis.Redis | None = None,
        http_client: httpx.Client | None = None,
        on_pause: Literal["raise", "wait"] = "raise",
        pause_timeout: float = 300.0,
        max_staleness: float = 1.0,
        timeout: float = 0.5,
        subscribe: bool = True,
    ) -> None:
        if not agent:
            raise ValueError("agent slug is required")
        if on_pause not in ("raise", "wait"):
            raise ValueError(f"on_pause must be 'raise' or 'wait', not {on_pause!r}")
        if max_staleness < 0 or pause_timeout < 0 or timeout <= 0:
            raise ValueError("max_staleness and pause_timeout must be >= 0 and timeout > 0")
        self.agent = agent
        self.on_pause = on_pause
        self.pause_timeout = pause_timeout
        self.max_staleness = max_staleness
        self.timeout = timeout
        self._snap: _Snapshot | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None
        self._transport: _RedisTransport | _HttpTransport | None = None
        self._config_error = ""
        if redis_client is not None or redis_url:
            try:
                client = redis_client or redis.Redis.from_url(
                    cast(str, redis_url),
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 1),  # one immediate retry on a dropped connection, no backoff sleeps
                )
            except Exception as exc:  # a bad URL: every check fails closed and says why
                self._config_error = f"invalid redis_url {redis_url!r}: {exc}"
            else:
                self._transport = _RedisTransport(agent, client, owned=redis_client is None)
            if subscribe and self._transport is not None:
                self._thread = threading.Thread(target=self._listen, name=f"firebreak-gate-{agent}", daemon=True)
                self._thread.start()
        elif url:
            self._transport = _HttpTransport(agent, url, api_key, http_client, timeout)
        else:
            self._config_error = "no gate configured (set FIREBREAK_REDIS_URL, or FIREBREAK_URL and FIREBREAK_API_KEY)"

    @classmethod
    def from_env(cls, agent: str, **kwargs: Any) -> Gate:
        """A gate configured from ``FIREBREAK_REDIS_URL``, ``FIREBREAK_URL`` and ``FIREBREAK_API_KEY``.

        Keyword arguments override the environment; Redis wins when both transports are configured.
        """
        kwargs.setdefault("redis_url", os.environ.get("FIREBREAK_REDIS_URL") or None)
        kwargs.setdefault("url", os.environ.get("FIREBREAK_URL") or None)
        kwargs.setdefault("api_key", os.environ.get("FIREBREAK_API_KEY") or None)
        return cls(agent, **kwargs)

    # --- checks ---------------------------------------------------------------

    def check(self, tool: str | None = None) -> None:
        """Return if the agent may go on (and may call ``tool``); raise a ``GateClosed`` otherwise.

        Budget freeze does not stop ``check()``: runs already in flight drain (see :meth:`begin_run`).
        """
        snap = self._snap
        if snap is None or time.monotonic() - snap.at > self.max_staleness:
            snap = self._refresh()
        if snap.open and (tool is None or tool not in snap.disabled):
            return
        self._closed(snap, tool)

    def begin_run(self) -> None:
        """Call at the start of each new run/session: a :meth:`check`, and ``BudgetFrozen`` if new runs are refused."""
        self.check()
        snap = cast(_Snapshot, self._snap)
        if snap.frozen:
            raise BudgetFrozen(self.agent, **self._who(snap))

    def guard(self, fn: F) -> F:
        """Decorator for an agent's step function: :meth:`check` before every call (sync or async)."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                self.check()
                return await fn(*args, **kwargs)

            return cast(F, guarded_async)

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.check()
            return fn(*args, **kwargs)

        return cast(F, guarded)

    @overload
    def tool(self, name: F) -> F: ...
    @overload
    def tool(self, name: str | None = None) -> Callable[[F], F]: ...
    def tool(self, name: str | Callable[..., Any] | None = None) -> Any:
        """Decorator for a tool function: ``check(tool=name)`` before every call (name defaults to the function's)."""
        if callable(name):
            return self.tool(None)(name)

        def decorate(fn: F) -> F:
            tool_name = name or fn.__name__
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def checked_async(*args: Any, **kwargs: Any) -> Any:
                    self.check(tool_name)
                    return await fn(*args, **kwargs)

                return cast(F, checked_async)

            @functools.wraps(fn)
            def checked(*args: Any, **kwargs: Any) -> Any:
                self.check(tool_name)
                return fn(*args, **kwargs)

            return cast(F, checked)

        return decorate

    # --- reading the state ---------------------------------------------------

    @property
    def state(self) -> dict[str, Any] | None:
        """A copy of the last gate document read (``None`` before the first read). No I/O; may be stale."""
        snap = self._snap
        return copy.deepcopy(snap.doc) if snap is not None else None

    @property
    def subscribed(self) -> bool:
        """True while the subscription thread is connected and listening for gate changes."""
        return self._subscribed.is_set()

    def fallback_response(self) -> str:
        """The answer to serve while the agent is stopped: the gate's ``fallback_message``. Never raises."""
        try:
            try:
                snap: _Snapshot | None = self._current()
            except Exception:
                snap = self._snap
            message = snap.doc.get("fallback_message") if snap is not None else None
            return message if isinstance(message, str) and message.strip() else GENERIC_FALLBACK
        except Exception:
            return GENERIC_FALLBACK

    # --- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Stop the subscription thread and close the connections the gate opened itself."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if self._transport is not None:
            self._transport.close()

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        snap = self._snap
        held = f"{snap.state} v{snap.version}" if snap else "unread"
        transport = self._transport.name if self._transport else "unconfigured"
        return f"<Gate {self.agent} via {transport}: {held}>"

    # --- internals -----------------------------------------------------------

    def _current(self) -> _Snapshot:
        snap = self._snap
        if snap is None or time.monotonic() - snap.at > self.max_staleness:
            snap = self._refresh()
        return snap

    def _refresh(self) -> _Snapshot:
        """One read through the transport; any failure becomes GateUnavailable (fail closed)."""
        if self._transport is None:
            raise GateUnavailable(self.agent, reason=self._config_error)
        held = self._snap
        try:
            raw, etag = self._transport.fetch(held.etag if held is not None else None)
        except _Unreadable as exc:
            raise GateUnavailable(self.agent, reason=str(exc)) from None
        except Exception as exc:
            raise GateUnavailable(self.agent, reason=f"{type(exc).__name__}: {exc}") from exc
        if raw is None:  # 304 Not Modified: the held copy is still current
            return self._accept(cast(_Snapshot, held).raw, None, etag, confirmed=True)
        if held is not None and raw == held.raw:
            return self._accept(raw, None, etag, confirmed=True)
        try:
            doc = parse_document(raw, self.agent)
        except ValueError as exc:
            raise GateUnavailable(self.agent, reason=f"malformed gate document: {exc}") from exc
        return self._accept(raw, doc, etag, confirmed=True)

    def _accept(self, raw: bytes | str, doc: dict[str, Any] | None, etag: str | None, *, confirmed: bool) -> _Snapshot:
        """Install a document unless it is older than the one held.

        ``confirmed``: the document was just read from the source, so an equal or older version there
        proves the held copy is current (its age resets). A pushed event only ever replaces with newer.
        """
        now = time.monotonic()
        with self._changed:
            held = self._snap
            if held is None or (doc is not None and doc["version"] > held.version):
                new = _Snapshot(cast("dict[str, Any]", doc), raw, etag, now)
                self._snap = new
                self._changed.notify_all()
                return new
            if confirmed:
                held = held.touched(now)
                self._snap = held
            return held

    def _closed(self, snap: _Snapshot, tool: str | None) -> None:
        if snap.state == "paused" and self.on_pause == "wait" and not snap.doc.get("fleet_stopped"):
            snap = self._wait_out_pause(snap)
        who = self._who(snap)
        if snap.state == "killed":
            raise AgentKilled(self.agent, **who)
        if snap.doc.get("fleet_stopped"):
            by = f" by {who['changed_by']}" if who["changed_by"] else ""
            why = f": {who['reason']}" if who["reason"] else ""
            raise AgentKilled(self.agent, **who, message=f"{self.agent} was stopped with the whole fleet{by}{why}")
        if snap.state == "paused":
            raise AgentPaused(self.agent, **who)
        if tool is not None and tool in snap.disabled:
            raise ToolDisabled(self.agent, tool, **who)

    def _wait_out_pause(self, snap: _Snapshot) -> _Snapshot:
        """Block while paused; return the first non-paused document, or raise AgentPaused after pause_timeout."""
        deadline = time.monotonic() + self.pause_timeout
        poll = max(self.max_staleness, _MIN_POLL)
        while snap.state == "paused" and not snap.doc.get("fleet_stopped"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                exc = AgentPaused(self.agent, **self._who(snap))
                exc.args = (f"{exc} (still paused after {self.pause_timeout:g} s)",)
                raise exc
            with self._changed:
                if self._snap is snap:  # woken early by the subscription when a newer document arrives
                    self._changed.wait(min(remaining, poll))
            snap = self._current()
        return snap

    @staticmethod
    def _who(snap: _Snapshot) -> dict[str, Any]:
        doc = snap.doc
        return {
            "reason": str(doc.get("reason") or ""),
            "changed_by": str(doc.get("changed_by") or ""),
            "version": snap.version,
        }

    def _budget(self) -> dict[str, Any]:
        """The held document's budget: no I/O once a document is held (read once otherwise)."""
        snap = self._snap if self._snap is not None else self._current()
        return snap.doc.get("budget") or {}

    def _listen(self) -> None:
        """Subscription thread: install each newer published document; reconnect with backoff until closed."""
        transport = cast(_RedisTransport, self._transport)
        backoff = 0.1
        while not self._stop.is_set():
            pubsub = transport.client.pubsub()
            try:
                pubsub.subscribe(transport.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._subscribed.set()
                        backoff = 0.1
                    elif message["type"] == "message":
                        self._on_event(message["data"])
            except Exception:  # noqa: S110 - disconnected: the local copy ages out and checks go back to GET
                pass
            finally:
                self._subscribed.clear()
                with contextlib.suppress(Exception):  # closing a broken connection; nothing else to do
                    pubsub.close()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, 5.0)

    def _on_event(self, raw: bytes | str) -> None:
        try:
            doc = parse_document(raw, self.agent)
        except ValueError:
            return  # a malformed event changes nothing; the next GET tells the truth
        self._accept(raw, doc, None, confirmed=False)
