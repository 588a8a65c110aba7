"""How the gate document reaches the agent: read from Redis, read over HTTP, or pushed down an HTTP stream."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import quote

import httpx
import redis

from .documents import GATE_CHANNEL, GATE_KEY, GATE_PATH, GATE_STREAM_PATH


class Unreadable(Exception):
    """A transport could not produce a gate document; the message says why."""


class RedisTransport:
    name = "redis"

    def __init__(self, agent: str, client: redis.Redis, owned: bool) -> None:
        self.client = client
        self.owned = owned
        self.key = GATE_KEY.format(slug=agent)
        self.channel = GATE_CHANNEL.format(slug=agent)

    def fetch(self, etag: str | None) -> tuple[bytes | str | None, str | None]:
        raw = self.client.get(self.key)
        if raw is None:
            raise Unreadable(f"Redis key {self.key} does not exist")
        return cast(bytes, raw), None

    def close(self) -> None:
        if self.owned:
            self.client.close()


def _error_detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except Exception:
        return response.text[:200]


class HttpTransport:
    name = "http"

    def __init__(self, agent: str, url: str, api_key: str | None, client: httpx.Client | None, timeout: float) -> None:
        base = url.rstrip("/")
        self.url = base + GATE_PATH.format(slug=quote(agent, safe=""))
        self.stream_url = base + GATE_STREAM_PATH.format(slug=quote(agent, safe=""))
        self.api_key = api_key
        self.owned = client is None
        self.client = client if client is not None else httpx.Client(timeout=timeout)
        self.timeout = timeout

    def headers(self, accept: str) -> dict[str, str]:
        if not self.api_key:
            raise Unreadable("no API key (set FIREBREAK_API_KEY or pass api_key=)")
        return {"Authorization": f"Bearer {self.api_key}", "Accept": accept}

    def fetch(self, etag: str | None) -> tuple[bytes | str | None, str | None]:
        """The document's bytes and ETag, or ``(None, etag)`` when the server answers 304 Not Modified."""
        headers = self.headers("application/json")
        if etag:
            headers["If-None-Match"] = etag
        response = self.client.get(self.url, headers=headers, timeout=self.timeout)
        if response.status_code == 304 and etag:
            return None, etag
        if response.status_code != 200:
            raise Unreadable(f"GET {self.url} answered HTTP {response.status_code}: {_error_detail(response)}")
        return response.content, response.headers.get("etag")

    def close(self) -> None:
        if self.owned:
            self.client.close()


class EventStream:
    """Listen on ``GET …/gate/stream`` (Server-Sent Events) in a daemon thread until closed.

    ``on_document(raw, first)`` gets each ``event: gate`` (``first`` for the one sent on connect, the
    server's current document) and says whether it was accepted: the stream counts as connected once
    the first one is; ``heard_at`` is when the stream last said anything (an event or a
    ``: ping``), which is how the gate knows the stream is alive. A read stays open for at most
    ``silence`` seconds without a byte; then, or on any error, the stream reconnects with backoff
    (honouring ``Retry-After``), and meanwhile the gate polls.
    """

    def __init__(
        self,
        transport: HttpTransport,
        on_document: Callable[[bytes, bool], bool],
        *,
        silence: float,
        connect_timeout: float,
        name: str,
    ) -> None:
        self.transport = transport
        self.on_document = on_document
        self.silence = silence
        self.connect_timeout = connect_timeout
        self.connected = threading.Event()
        self.heard_at = 0.0
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(silence, connect=connect_timeout))
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def alive(self, now: float) -> bool:
        return self.connected.is_set() and now - self.heard_at <= self.silence

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):  # closing may interrupt a read in flight: that is the point
            self._client.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            wait = backoff
            try:
                headers = self.transport.headers("text/event-stream")
                with self._client.stream("GET", self.transport.stream_url, headers=headers) as response:
                    if response.status_code != 200:
                        retry_after = response.headers.get("retry-after", "")
                        if retry_after.isdigit():
                            wait = max(wait, float(retry_after))
                    else:
                        backoff = 0.1
                        self._read(response)
            except Exception:  # noqa: S110 - disconnected or refused: the gate polls meanwhile, and fails closed
                pass
            finally:
                self.connected.clear()
            if self._stop.wait(wait):
                return
            backoff = min(backoff * 2, 5.0)

    def _read(self, response: httpx.Response) -> None:
        event, first = "", True
        data: list[str] = []
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            self.heard_at = time.monotonic()
            if not line:  # end of an event
                if event == "gate" and data:
                    accepted = self.on_document("\n".join(data).encode(), first)
                    if first:
                        first = False
                        if not accepted:  # a stream whose current document is refused is not trusted
                            return
                        self.connected.set()
                event, data = "", []
            elif line.startswith(":"):  # a comment: the server's ping
                continue
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
