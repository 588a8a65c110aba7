"""The gate's own server: gate reads and the push stream, in a process ingest load cannot starve.

An ASGI app (run by uvicorn, see ``firebreak/asgi.py``) that answers two paths itself, from the
Redis copy and without Django's request stack:

- ``GET /api/v1/agents/<slug>/gate``: the signed document, ``ETag`` over its content, 304 on a match;
- ``GET /api/v1/agents/<slug>/gate/stream``: Server-Sent Events, ``event: gate`` with the signed
  document on connect and on every change as it is published, and a ``: ping`` comment every
  ``FIREBREAK_GATE_PING_SECONDS`` (15 s).

Both take the agent's key (``Authorization: Bearer``): an agent key with the ``gate`` scope for its
own agent, or a person's key (scope ``api``, any role). A request without a bearer key goes to the
next app (Django), which serves the same read for a browser session.

One Redis subscription (``PSUBSCRIBE firebreak:gate-events:*``) feeds every open stream; when it
is lost, every stream is closed and new ones answer 503 until it is back, so agents fall back to
polling and fail closed past their window rather than trust a stream that can no longer hear a kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings

from agents.gate import CHANNEL, KEY, gate_read
from agents.keys.selectors import api_key_resolve
from agents.keys.services import REVOKED_CHANNEL
from agents.models import ApiKey, ApiKeyScope
from agents.signing import document_etag, document_sign, document_verify
from core.redis import gate_redis_url
from core.roles import VIEWER, has_role

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Any ASGI application (Django's handler declares its own scope types, hence the loose arguments).
ASGIApp = Callable[..., Awaitable[None]]

PATH = re.compile(r"^/api/v1/agents/(?P<slug>[a-z0-9][a-z0-9-]{0,62})/gate(?P<stream>/stream)?/?$")
EVENTS_PATTERN = CHANNEL.format(slug="*")
CHANNEL_PREFIX = CHANNEL.format(slug="")
QUEUE_MAX = 64  # a stream this far behind is closed; the agent reconnects and reads the current document


@dataclass(eq=False)
class _Stream:
    slug: str
    lookup: str
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))

    def push(self, item: bytes | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # too slow to keep up: end it, it reconnects to the current state
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class GateServer:
    """Serves gate reads and streams; hands every other request to ``fallback``."""

    def __init__(self, fallback: ASGIApp, *, redis_url: str | None = None) -> None:
        self.fallback = fallback
        self.redis_url = redis_url
        self.streams: dict[str, set[_Stream]] = defaultdict(set)
        self.listening = asyncio.Event()
        self.ping_seconds = float(getattr(settings, "FIREBREAK_GATE_PING_SECONDS", 15.0))
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        match = PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        bearer = _bearer(scope) if match else None
        if match is None or bearer is None or scope["method"] not in ("GET", "HEAD"):
            await self.fallback(scope, receive, send)
            return
        slug = match["slug"]
        key = await sync_to_async(api_key_resolve, thread_sensitive=False)(raw=bearer)
        refusal = _refusal(key, slug)
        if refusal is not None:
            await _json(send, refusal[0], {"error": refusal[1]}, extra=_auth_header(refusal[0]))
            return
        assert key is not None
        if match["stream"]:
            await self._stream(scope, receive, send, slug, key)
        else:
            await self._read(scope, send, slug)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> None:
        if self._listener is None:
            self._redis = aioredis.Redis.from_url(
                self.redis_url or gate_redis_url(), socket_connect_timeout=2, health_check_interval=10
            )
            self._listener = asyncio.create_task(self._listen(), name="gate-events")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._drop_all()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # --- reads ----------------------------------------------------------------------------------

    async def _document(self, slug: str) -> dict[str, Any] | None:
        """The signed document, signed now: from the Redis copy, or PostgreSQL when the copy is not there."""
        raw = None
        if self._redis is not None:
            with contextlib.suppress(Exception):  # Redis down: PostgreSQL below
                raw = await self._redis.get(KEY.format(slug=slug))
        if raw is not None:
            with contextlib.suppress(ValueError):
                doc = json.loads(raw)
                if isinstance(doc, dict) and document_verify(doc):
                    return document_sign(doc)
        return await sync_to_async(gate_read, thread_sensitive=False)(slug)

    async def _read(self, scope: Scope, send: Send, slug: str) -> None:
        doc = await self._document(slug)
        if doc is None:
            await _json(send, 404, {"error": f"no agent {slug!r}"})
            return
        etag = document_etag(doc)
        headers = [(b"etag", etag.encode()), (b"cache-control", b"no-store")]
        if _header(scope, b"if-none-match") == etag:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await _json(send, 200, doc, extra=headers, head=scope["method"] == "HEAD")

    # --- streams --------------------------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send, slug: str, key: ApiKey) -> None:
        if not self.listening.is_set():
            await _json(
                send,
                503,
                {"error": "gate events are not available right now; poll GET /gate meanwhile"},
                extra=[(b"retry-after", b"2")],
            )
            return
        doc = await self._document(slug)
        if doc is None:
            await _json(send, 404, {"error": f"no agent {slug!r}"})
            return
        stream = _Stream(slug=slug, lookup=key.lookup)
        self.streams[slug].add(stream)
        watcher = asyncio.create_task(_until_disconnect(receive, stream))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            await _event(send, json.dumps(doc, separators=(",", ":")).encode())
            while True:
                try:
                    item = await asyncio.wait_for(stream.queue.get(), timeout=self.ping_seconds)
                except TimeoutError:
                    await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
                    continue
                if item is None:  # the agent left, or the server ends it: revoked key, lost subscription, too slow
                    break
                await _event(send, item)
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the agent went away mid-write
            pass
        finally:
            watcher.cancel()
            self.streams[slug].discard(stream)
            if not self.streams[slug]:
                self.streams.pop(slug, None)

    async def _listen(self) -> None:
        """Feed every open stream from one subscription; reconnect with backoff, closing streams while deaf."""
        backoff = 0.1
        while True:
            assert self._redis is not None
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(EVENTS_PATTERN)
                await pubsub.subscribe(REVOKED_CHANNEL)
                self.listening.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    kind = message["type"]
                    if kind == "pmessage":
                        slug = message["channel"].decode()[len(CHANNEL_PREFIX) :]
                        for stream in tuple(self.streams.get(slug, ())):
                            stream.push(message["data"])
                    elif kind == "message" and message["channel"] == REVOKED_CHANNEL.encode():
                        self._drop_key(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("gate events subscription lost; closing open streams", exc_info=True)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            self._drop_all()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _drop_all(self) -> None:
        for streams in tuple(self.streams.values()):
            for stream in tuple(streams):
                stream.push(None)

    def _drop_key(self, lookup: str) -> None:
        for streams in tuple(self.streams.values()):
            for stream in tuple(streams):
                if stream.lookup == lookup:
                    stream.push(None)

    def stream_count(self) -> int:
        return sum(len(s) for s in self.streams.values())


# --- helpers ----------------------------------------------------------------------------------------


def _refusal(key: ApiKey | None, slug: str) -> tuple[int, str] | None:
    if key is None:
        return 401, "unknown or revoked API key"
    if key.agent_id is not None:
        if ApiKeyScope.GATE not in key.scopes:
            return 403, "this key cannot read gates (it needs the 'gate' scope)"
        if key.agent is None or key.agent.slug != slug:
            return 403, "this key belongs to another agent"
        return None
    if ApiKeyScope.API not in key.scopes or key.user is None or not has_role(key.user, VIEWER):
        return 403, "this key lacks the 'api' scope"
    return None


def _auth_header(status: int) -> list[tuple[bytes, bytes]]:
    return [(b"www-authenticate", b'Bearer realm="firebreak"')] if status == 401 else []


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if not value:
        return None
    parts = value.split()
    return parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else None


async def _json(
    send: Send,
    status: int,
    body: object,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
    head: bool = False,
) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": b"" if head else payload})


async def _event(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": b"event: gate\ndata: " + data + b"\n\n", "more_body": True})


async def _until_disconnect(receive: Receive, stream: _Stream) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.push(None)
            return
