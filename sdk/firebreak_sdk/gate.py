"""The gate: a fail-closed check an agent makes before every step and every tool call.

The server keeps each agent's gate document in Redis (``firebreak:gate:<slug>``), publishes every
change on ``firebreak:gate-events:<slug>``, serves it at ``GET /api/v1/agents/<slug>/gate`` and
pushes it down ``GET /api/v1/agents/<slug>/gate/stream``. :class:`Gate` reads it over direct Redis
(with the agent's own read-only Redis user) or over HTTP, verifies the server's signature on every
document, keeps a local copy while it is fresh, and raises a
:class:`~firebreak_sdk.errors.GateClosed` when the agent must stop — including when the gate cannot
be read, or what was read is not the server's.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast, overload

import httpx
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.backoff import NoBackoff
from redis.retry import Retry

from .documents import BLOCK_KINDS, PublicKeyError, blocked_until, load_public_key, order, parse_document
from .errors import (
    AgentKilled,
    AgentPaused,
    Blocked,
    BudgetFrozen,
    GateUnavailable,
    NoHandlerForLevel,
    ToolDisabled,
    ToolNotAllowed,
)
from .transports import EventStream, HttpTransport, RedisTransport, Unreadable

__all__ = ["GENERIC_FALLBACK", "Gate"]

F = TypeVar("F", bound=Callable[..., Any])

GENERIC_FALLBACK = "This assistant is temporarily unavailable. A person will follow up with you shortly."
_MIN_POLL = 0.05  # seconds between re-reads while waiting out a pause without a subscription


class _Snapshot:
    """One accepted gate document, pre-digested for the hot path. Immutable: replaced, never changed."""

    __slots__ = (
        "allowed", "at", "blocked", "disabled", "doc", "etag", "frozen", "open", "order", "raw", "state", "version"
    )  # fmt: skip

    def __init__(self, doc: dict[str, Any], raw: bytes | str, etag: str | None, at: float) -> None:
        self.doc = doc
        self.raw = raw
        self.at = at
        self.version: int = doc["version"]
        self.order = order(doc)
        self.etag = etag
        self.state: str = doc["state"]
        self.disabled = frozenset(doc.get("disabled_tools") or ())
        # Empty: every tool allowed (an agent registered without a list), as the server's detector reads it.
        self.allowed = frozenset(doc.get("allowed_tools") or ())
        self.frozen = bool((doc.get("budget") or {}).get("frozen"))
        self.open = self.state == "active" and not doc.get("fleet_stopped")
        self.blocked = blocked_until(doc)

    def touched(self, at: float) -> _Snapshot:
        return _Snapshot(self.doc, self.raw, self.etag, at)


class Gate:
    """An agent's gate. Call :meth:`check` before every step and :meth:`check` with ``tool=`` before every tool call.

    Transport: direct Redis when ``redis_client`` or ``redis_url`` is given (the agent's own read-only
    Redis user), else HTTP to ``gate_url`` or ``url`` with ``api_key``. Every document must carry the
    server's signature, verified with ``public_key`` (default: ``FIREBREAK_GATE_PUBLIC_KEY`` from the
    environment), and be issued within ``max_document_age`` seconds; anything else is refused.

    It fails closed: whenever the gate cannot be read, or what was read is refused, checks raise
    :class:`~firebreak_sdk.errors.GateUnavailable`. With ``subscribe=True`` (the default) changes are
    pushed to a daemon thread — a Redis subscription, or over HTTP the gate stream — so a kill lands
    within milliseconds. A local copy is trusted for ``max_staleness`` seconds after it was last read,
    and for as long as the HTTP stream is alive (it pings every 15 s; after ``stream_silence`` seconds
    without a byte the gate polls again). ``timeout`` bounds each read (seconds).

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
        public_key: str | Ed25519PublicKey | None = None,
        gate_url: str | None = None,
        redis_client: redis.Redis | None = None,
        http_client: httpx.Client | None = None,
        on_pause: Literal["raise", "wait"] = "raise",
        pause_timeout: float = 300.0,
        max_staleness: float = 1.0,
        max_document_age: float = 60.0,
        stream_silence: float = 20.0,
        timeout: float = 0.5,
        subscribe: bool = True,
    ) -> None:
        if not agent:
            raise ValueError("agent slug is required")
        if on_pause not in ("raise", "wait"):
            raise ValueError(f"on_pause must be 'raise' or 'wait', not {on_pause!r}")
        if max_staleness < 0 or pause_timeout < 0 or timeout <= 0:
            raise ValueError("max_staleness and pause_timeout must be >= 0 and timeout > 0")
        if max_document_age <= 0 or stream_silence <= 0:
            raise ValueError("max_document_age and stream_silence must be > 0")
        self.agent = agent
        self.on_pause = on_pause
        self.pause_timeout = pause_timeout
        self.max_staleness = max_staleness
        self.max_document_age = max_document_age
        self.timeout = timeout
        self._snap: _Snapshot | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: EventStream | None = None
        self._transport: RedisTransport | HttpTransport | None = None
        self._config_error = ""
        self._public_key: Ed25519PublicKey | None = None
        if public_key is None:
            public_key = os.environ.get("FIREBREAK_GATE_PUBLIC_KEY") or None
        try:
            self._public_key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        except PublicKeyError as exc:
            self._config_error = str(exc)
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
                self._transport = RedisTransport(agent, client, owned=redis_client is None)
            if subscribe and self._transport is not None:
                self._thread = threading.Thread(target=self._listen, name=f"firebreak-gate-{agent}", daemon=True)
                self._thread.start()
        elif gate_url or url:
            http = HttpTransport(agent, cast(str, gate_url or url), api_key, http_client, timeout)
            self._transport = http
            if subscribe:
                self._stream = EventStream(
                    http,
                    self._on_pushed,
                    silence=stream_silence,
                    connect_timeout=max(timeout, 2.0),
                    name=f"firebreak-gate-{agent}",
                )
        else:
            self._config_error = "no gate configured (set FIREBREAK_REDIS_URL, or FIREBREAK_URL and FIREBREAK_API_KEY)"

    @classmethod
    def from_env(cls, agent: str, **kwargs: Any) -> Gate:
        """A gate configured from ``FIREBREAK_REDIS_URL``, ``FIREBREAK_URL`` (or ``FIREBREAK_GATE_URL``),
        ``FIREBREAK_API_KEY`` and ``FIREBREAK_GATE_PUBLIC_KEY``.

        Keyword arguments override the environment; Redis wins when both transports are configured.
        """
        kwargs.setdefault("redis_url", os.environ.get("FIREBREAK_REDIS_URL") or None)
        kwargs.setdefault("gate_url", os.environ.get("FIREBREAK_GATE_URL") or None)
        kwargs.setdefault("url", os.environ.get("FIREBREAK_URL") or None)
        kwargs.setdefault("api_key", os.environ.get("FIREBREAK_API_KEY") or None)
        return cls(agent, **kwargs)

    # --- checks ---------------------------------------------------------------

    def check(
        self,
        tool: str | None = None,
        *,
        session: str | None = None,
        user: str | None = None,
        tenant: str | None = None,
    ) -> None:
        """Return if the agent may go on (and may call ``tool``); raise a ``GateClosed`` otherwise.

        With ``session``, ``user`` or ``tenant``, also raise :class:`~firebreak_sdk.errors.Blocked` when
        that one is blocked and its block has not expired; other sessions carry on.
        With ``tool``, raise :class:`~firebreak_sdk.errors.ToolDisabled` when an operator switched it off and
        :class:`~firebreak_sdk.errors.ToolNotAllowed` when the agent's ``allowed_tools`` (non-empty) does not
        name it: the call is refused before it happens.
        Budget freeze does not stop ``check()``: runs already in flight drain (see :meth:`begin_run`).
        """
        snap = self._snap
        if snap is None or not self._fresh(snap, time.monotonic()):
            snap = self._refresh()
        refused = tool is not None and (tool in snap.disabled or bool(snap.allowed and tool not in snap.allowed))
        if not snap.open or refused:
            self._closed(snap, tool)  # returns only when a pause was waited out
            snap = cast(_Snapshot, self._snap)
        if session is not None or user is not None or tenant is not None:
            self._check_blocked(snap, {"session": session, "user": user, "tenant": tenant})

    def _check_blocked(self, snap: _Snapshot, who: dict[str, str | None]) -> None:
        now = time.time()
        for kind in BLOCK_KINDS:
            key = who.get(kind)
            until = snap.blocked[kind].get(key) if key is not None else None
            if until is not None and until > now:
                expires = next(e["expires_at"] for e in snap.doc["blocked"][f"{kind}s"] if e["id"] == key)
                raise Blocked(self.agent, kind, str(key), expires_at=expires, **self._who(snap))

    # --- the fallback ladder and rollback ------------------------------------

    @property
    def level(self) -> str:
        """The level of the fallback ladder the agent runs at (``"full"`` from a server without ladders).

        Reads the gate when the held copy is stale; raises ``GateUnavailable`` when it cannot (fail closed).
        """
        level = self._current().doc.get("level")
        return level if isinstance(level, str) and level else "full"

    @property
    def levels(self) -> list[str]:
        """The agent's ladder, most capable level first."""
        snap = self._current()
        levels = snap.doc.get("levels")
        return list(levels) if isinstance(levels, list) and levels else [self.level]

    @property
    def pinned(self) -> dict[str, str] | None:
        """``{"prompt_version", "model_version"}`` the agent must run (a rollback), or None when not pinned."""
        pinned = self._current().doc.get("pinned")
        return dict(pinned) if isinstance(pinned, dict) else None

    def by_level(self, handlers: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
        """The handler for the current level, else for the nearest level below it that has one.

        ``gate.by_level({"full": run_agent, "retrieval": answer_from_docs, "static": canned})(question)``.
        A :meth:`check` first (a killed or paused agent raises). Raises
        :class:`~firebreak_sdk.errors.NoHandlerForLevel` when neither the level nor any below has a handler.
        """
        self.check()
        snap = self._current()
        level = self.level
        ladder = snap.doc.get("levels")
        ladder = list(ladder) if isinstance(ladder, list) and level in ladder else [level]
        for name in ladder[ladder.index(level) :]:
            if name in handlers:
                return handlers[name]
        raise NoHandlerForLevel(self.agent, level, version=snap.version)

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
        """True while changes are pushed to this gate: the Redis subscription or the HTTP stream is connected."""
        return self._subscribed.is_set() or (self._stream is not None and self._stream.connected.is_set())

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
        if self._stream is not None:
            self._stream.close()
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

    def _fresh(self, snap: _Snapshot, now: float) -> bool:
        """The held copy may be used: read within ``max_staleness``, or the push stream is alive."""
        if now - snap.at <= self.max_staleness:
            return True
        stream = self._stream
        return stream is not None and stream.alive(now)

    def _current(self) -> _Snapshot:
        snap = self._snap
        if snap is None or not self._fresh(snap, time.monotonic()):
            snap = self._refresh()
        return snap

    def _refresh(self) -> _Snapshot:
        """One read through the transport; any failure becomes GateUnavailable (fail closed)."""
        if self._transport is None or self._config_error:
            raise GateUnavailable(self.agent, reason=self._config_error)
        held = self._snap
        try:
            raw, etag = self._transport.fetch(held.etag if held is not None else None)
        except Unreadable as exc:
            raise GateUnavailable(self.agent, reason=str(exc)) from None
        except Exception as exc:
            raise GateUnavailable(self.agent, reason=f"{type(exc).__name__}: {exc}") from exc
        if raw is None:  # 304 Not Modified: the held copy is still current
            return self._accept(cast(_Snapshot, held).raw, None, etag, fetched=True)
        if held is not None and raw == held.raw:
            return self._accept(raw, None, etag, fetched=True)
        try:
            doc = self._parse(raw)
        except ValueError as exc:
            raise GateUnavailable(self.agent, reason=f"gate document refused: {exc}") from exc
        return self._accept(raw, doc, etag, fetched=True)

    def _parse(self, raw: bytes | str) -> dict[str, Any]:
        return parse_document(raw, self.agent, public_key=self._public_key, max_age=self.max_document_age)

    def _accept(self, raw: bytes | str, doc: dict[str, Any] | None, etag: str | None, *, fetched: bool) -> _Snapshot:
        """Install a verified document, or confirm the held one.

        ``fetched``: the document was just read from the server (or is the one a stream sends on
        connect): it is the server's current word and replaces the held copy whatever its version,
        so a database restore that lowered versions still reaches the agent. A pushed document
        replaces the held copy only when it is not older by (epoch, version): a delayed or replayed
        event can never undo a newer kill.
        """
        now = time.monotonic()
        with self._changed:
            held = self._snap
            if doc is not None and (held is None or fetched or order(doc) >= held.order):
                new = _Snapshot(doc, raw, etag, now)
                self._snap = new
                self._changed.notify_all()
                return new
            if held is None:  # a confirmation with nothing held cannot happen; refuse rather than guess
                raise GateUnavailable(self.agent, reason="nothing read yet")
            if fetched:
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
        if tool is not None and snap.allowed and tool not in snap.allowed:
            raise ToolNotAllowed(self.agent, tool, allowed=sorted(snap.allowed), version=snap.version)

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
        transport = cast(RedisTransport, self._transport)
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
                        self._on_pushed(message["data"], False)
            except Exception:  # noqa: S110 - disconnected: the local copy ages out and checks go back to GET
                pass
            finally:
                self._subscribed.clear()
                with contextlib.suppress(Exception):  # closing a broken connection; nothing else to do
                    pubsub.close()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, 5.0)

    def _on_pushed(self, raw: bytes | str, first: bool) -> bool:
        """A document pushed by the Redis subscription or the HTTP stream; True when it was accepted.

        A refused one (malformed, unsigned, forged, too old) changes nothing: the held copy ages out
        and the next read tells the truth. The first document of a stream is the server's current one.
        """
        try:
            doc = self._parse(raw)
        except ValueError:
            return False
        with self._changed:
            held = self._snap
            newer = held is None or first or order(doc) >= held.order
        if newer:
            self._accept(raw, doc, None, fetched=first)
        return newer
