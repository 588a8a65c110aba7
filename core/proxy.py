"""A streaming reverse proxy (ASGI) to the web processes, so the gate server can front one address.

``make run`` and compose serve the app on one host and port: the gate server (uvicorn) answers gate
reads and streams itself and hands everything else here, which forwards it to gunicorn (a unix
socket or an HTTP address) without buffering bodies either way. It says who the client is in
``X-Forwarded-For`` and ``X-Forwarded-Proto``: a peer's own forwarding headers are passed on only
when the peer is a trusted proxy (``FIREBREAK_TRUSTED_PROXIES``), and dropped from anyone else, so a
client cannot choose the address it is locked out or throttled under, nor claim https. When gunicorn cannot be reached
the answer is 503 with ``Retry-After`` in JSON (exporters and the SDK retry it), never a 500.

An HTTP upstream whose name has several addresses (compose's ``web`` scaled to N containers) gets the requests
in turn, address by address: the name is looked up again every ``RESOLVE_SECONDS``, so a container added or
removed is seen within seconds (kept-alive connections alone would stay with whichever container took them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.client_ip import is_trusted_proxy

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RESOLVE_SECONDS = 5.0

# What a proxy says about the client: believed only from a trusted proxy.
FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"forwarded"})

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
    }
)


class UpstreamProxy:
    """Forward HTTP requests to ``upstream`` (``unix:/path/web.sock`` or ``http://host:port``)."""

    def __init__(self, upstream: str, *, timeout: float = 300.0) -> None:
        self._host = ""
        if upstream.startswith("unix:"):
            transport = httpx.AsyncHTTPTransport(uds=upstream.removeprefix("unix:"), retries=1)
            base_url = "http://web"
        else:
            transport = httpx.AsyncHTTPTransport(retries=1)
            base_url = upstream.rstrip("/")
            parts = urlsplit(base_url)
            self._scheme, self._host = parts.scheme, parts.hostname or ""
            self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._addresses: list[str] = []
        self._resolved_at = -RESOLVE_SECONDS
        self._turn = itertools.count()
        self.upstream = upstream
        self.client = httpx.AsyncClient(
            transport=transport,
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            follow_redirects=False,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets are not used by Firebreak
            return
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = forwarding_headers(scope)
        request = self.client.build_request(
            scope["method"], await self._origin() + target.decode("latin-1"), headers=headers, content=_body(receive)
        )
        try:
            response = await self.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            logger.warning("web upstream %s unreachable: %s", self.upstream, exc)
            await _unavailable(send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout):
            logger.warning("web upstream %s broke off a response", self.upstream)
        finally:
            await response.aclose()

    async def _origin(self) -> str:
        """Where this request goes: the next of the upstream's addresses ("" for a unix socket: the base URL).

        The client's own Host header is forwarded, so an address in the URL changes nothing Django sees."""
        if not self._host:
            return ""
        now = time.monotonic()
        if now - self._resolved_at >= RESOLVE_SECONDS:
            self._resolved_at = now
            try:
                found = await asyncio.get_running_loop().getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
            except OSError as exc:  # keep the addresses known; connecting by name says what is wrong
                logger.warning("web upstream %s: cannot look up %s: %s", self.upstream, self._host, exc)
            else:
                self._addresses = sorted({str(info[4][0]) for info in found})
        if not self._addresses:
            return f"{self._scheme}://{self._hostport(self._host)}"
        address = self._addresses[next(self._turn) % len(self._addresses)]
        return f"{self._scheme}://{self._hostport(address)}"

    def _hostport(self, host: str) -> str:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        return f"{host}:{self._port}"

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()


def forwarding_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request's headers as sent upstream: hop-by-hop ones dropped, and X-Forwarded-For /
    X-Forwarded-Proto those of a trusted peer (with the peer appended), or else the peer's own."""
    client = scope.get("client")
    peer = client[0] if client else ""
    trusted = is_trusted_proxy(peer)
    headers = [
        (k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP and (trusted or k.lower() not in FORWARDING)
    ]
    chain = b", ".join(v for k, v in headers if k.lower() == b"x-forwarded-for")
    headers = [(k, v) for k, v in headers if k.lower() != b"x-forwarded-for"]
    if peer:
        chain = chain + b", " + peer.encode() if chain else peer.encode()
    if chain:
        headers.append((b"x-forwarded-for", chain))
    if not any(k.lower() == b"x-forwarded-proto" for k, _ in headers):
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    return headers


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _unavailable(send: Send) -> None:
    payload = json.dumps({"error": "Firebreak's web processes are restarting; retry shortly"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"retry-after", b"2"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
