"""A streaming reverse proxy (ASGI) to the web processes, so the gate server can front one address.

``make run`` and compose serve the app on one host and port: the gate server (uvicorn) answers gate
reads and streams itself and hands everything else here, which forwards it to gunicorn (a unix
socket or an HTTP address) without buffering bodies either way. When gunicorn cannot be reached
the answer is 503 with ``Retry-After`` in JSON (exporters and the SDK retry it), never a 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

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
        if upstream.startswith("unix:"):
            transport = httpx.AsyncHTTPTransport(uds=upstream.removeprefix("unix:"), retries=1)
            base_url = "http://web"
        else:
            transport = httpx.AsyncHTTPTransport(retries=1)
            base_url = upstream.rstrip("/")
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
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        client = scope.get("client")
        forwarded = [h for h in headers if h[0].lower() == b"x-forwarded-for"]
        if client and not forwarded:
            headers.append((b"x-forwarded-for", client[0].encode()))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        request = self.client.build_request(
            scope["method"], target.decode("latin-1"), headers=headers, content=_body(receive)
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

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()


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
