"""The gate over HTTP, against a real local server that speaks the documented gate endpoint."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from firebreak_sdk import (
    GENERIC_FALLBACK,
    AgentKilled,
    AgentPaused,
    Gate,
    GateUnavailable,
    ToolDisabled,
    ToolNotAllowed,
)

from .conftest import AGENT, FALLBACK, content, free_port, gate_doc, signed

KEY = "fbk_refund_agent_key"
OTHER_AGENTS_KEY = "fbk_other_agent_key"


class GateServer(ThreadingHTTPServer):
    """Serves GET /api/v1/agents/<slug>/gate as documented; ``mode`` switches in a failure."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GateHandler)
        self.doc: dict = gate_doc("active", version=1)
        self.mode = "normal"  # or "500", "malformed", "sleep"
        self.sleep = 0.0
        self.log: list[tuple[int, dict]] = []  # (status, request headers) per request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class GateHandler(BaseHTTPRequestHandler):
    server: GateServer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        server = self.server
        headers = dict(self.headers.items())
        if server.mode == "sleep":
            time.sleep(server.sleep)
        slug = self.path.removeprefix("/api/v1/agents/").removesuffix("/gate")
        auth = headers.get("Authorization", "")
        if auth not in (f"Bearer {KEY}", f"Bearer {OTHER_AGENTS_KEY}"):
            return self.reply(401, {"error": "unknown API key"}, headers)
        if not self.path.startswith("/api/v1/agents/") or slug not in (AGENT, "other-agent"):
            return self.reply(404, {"error": f"no agent {slug!r}"}, headers)
        if (auth == f"Bearer {KEY}") != (slug == AGENT):
            return self.reply(403, {"error": "this key belongs to another agent"}, headers)
        if server.mode == "500":
            return self.reply(500, {"error": "internal error"}, headers)
        etag = f'"{server.doc["version"]}"'
        if headers.get("If-None-Match") == etag:
            return self.reply(304, None, headers, etag=etag)
        if server.mode == "malformed":
            return self.reply(200, b"<html>oops</html>", headers, etag=etag)
        return self.reply(200, signed(server.doc), headers, etag=etag)

    def reply(self, status: int, body, headers: dict, etag: str | None = None) -> None:
        self.server.log.append((status, headers))
        payload = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        if status != 304:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if status != 304:
            self.wfile.write(payload)


@pytest.fixture
def server():
    srv = GateServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def make_gate(server):
    gates: list[Gate] = []

    def make(**kwargs) -> Gate:
        kwargs.setdefault("url", server.url)
        kwargs.setdefault("api_key", KEY)
        # This server speaks the polled endpoint only; the push stream is tested against the real gate server.
        kwargs.setdefault("subscribe", False)
        gate = Gate(kwargs.pop("agent", AGENT), **kwargs)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.close()


def test_an_active_gate_passes_and_the_key_is_sent_as_a_bearer_token(server, make_gate):
    gate = make_gate()

    gate.check()
    gate.check(tool="refund")
    gate.begin_run()

    assert content(gate.state) == server.doc
    assert server.log[0][0] == 200
    assert server.log[0][1]["Authorization"] == f"Bearer {KEY}"
    assert len(server.log) == 1, "a fresh copy must not cost a request"


def test_a_killed_agent_raises_agent_killed(server, make_gate):
    server.doc = gate_doc("killed", version=7, reason="looping on refunds", changed_by="alice")

    with pytest.raises(AgentKilled, match="refund-agent was killed by alice: looping on refunds") as caught:
        make_gate().check()
    assert caught.value.version == 7


def test_paused_and_disabled_tools_behave_as_over_redis(server, make_gate):
    server.doc = gate_doc("active", disabled_tools=["refund"])
    gate = make_gate(max_staleness=0)
    with pytest.raises(ToolDisabled):
        gate.check(tool="refund")
    gate.check(tool="lookup_order")

    server.doc = gate_doc("paused", version=2)
    with pytest.raises(AgentPaused):
        gate.check()


def test_a_tool_outside_the_allowed_tools_is_refused_before_the_call(server, make_gate):
    server.doc = gate_doc("active", allowed_tools=["lookup_order", "send_email"], disabled_tools=["send_email"])
    gate = make_gate(max_staleness=0)
    with pytest.raises(ToolNotAllowed, match="issue_refund is not among refund-agent's allowed tools") as caught:
        gate.check(tool="issue_refund")
    assert (caught.value.tool, caught.value.allowed) == ("issue_refund", ["lookup_order", "send_email"])
    with pytest.raises(ToolDisabled):  # allowed but switched off by an operator: the switch says so
        gate.check(tool="send_email")
    gate.check(tool="lookup_order")
    gate.check()  # the agent itself carries on: only that call is refused

    server.doc = gate_doc("active", version=2, allowed_tools=[])  # no list: every tool allowed
    gate.check(tool="issue_refund")


def test_a_304_keeps_the_cached_document_and_a_new_version_replaces_it(server, make_gate):
    server.doc = gate_doc("active", version=5)
    gate = make_gate(max_staleness=0)

    gate.check()
    gate.check()
    assert [status for status, _ in server.log] == [200, 304]
    assert server.log[1][1]["If-None-Match"] == '"5"'
    assert gate.state["version"] == 5

    server.doc = gate_doc("killed", version=6, reason="looping on refunds")
    with pytest.raises(AgentKilled):
        gate.check()
    assert [status for status, _ in server.log] == [200, 304, 200]


def test_the_cached_copy_is_re_read_after_max_staleness(server, make_gate):
    gate = make_gate(max_staleness=0.2)
    gate.check()
    server.doc = gate_doc("killed", version=2)

    gate.check()  # still within max_staleness: the cached copy answers
    time.sleep(0.25)
    with pytest.raises(AgentKilled):
        gate.check()


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"api_key": "fbk_unknown"}, 401, "unknown API key"),
        ({"api_key": OTHER_AGENTS_KEY}, 403, "this key belongs to another agent"),
        ({"agent": "no-such-agent"}, 404, "no agent 'no-such-agent'"),
    ],
)
def test_auth_and_lookup_errors_raise_gate_unavailable(server, make_gate, kwargs, status, error):
    with pytest.raises(GateUnavailable, match=f"HTTP {status}: {error}"):
        make_gate(**kwargs).check()


def test_a_server_error_raises_gate_unavailable_even_with_a_cached_copy(server, make_gate):
    gate = make_gate(max_staleness=0.1)
    gate.check()
    server.mode = "500"
    time.sleep(0.15)

    with pytest.raises(GateUnavailable, match="HTTP 500: internal error"):
        gate.check()


def test_a_malformed_body_raises_gate_unavailable(server, make_gate):
    server.mode = "malformed"

    with pytest.raises(GateUnavailable, match="gate document refused: not JSON"):
        make_gate().check()


def test_no_api_key_raises_gate_unavailable_without_a_request(server, make_gate):
    with pytest.raises(GateUnavailable, match="no API key"):
        make_gate(api_key=None).check()
    assert server.log == []


def test_connection_refused_raises_gate_unavailable():
    gate = Gate(AGENT, url=f"http://127.0.0.1:{free_port()}", api_key=KEY)
    with gate, pytest.raises(GateUnavailable, match="ConnectError"):
        gate.check()


def test_a_server_slower_than_the_timeout_raises_gate_unavailable(server, make_gate):
    server.mode = "sleep"
    server.sleep = 2.0
    gate = make_gate(timeout=0.2)

    started = time.monotonic()
    with pytest.raises(GateUnavailable, match="Timeout"):
        gate.check()
    assert time.monotonic() - started < 1.0


def test_from_env_uses_firebreak_url_and_api_key(server, monkeypatch):
    server.doc = gate_doc("killed", reason="from env")
    monkeypatch.delenv("FIREBREAK_REDIS_URL", raising=False)
    monkeypatch.setenv("FIREBREAK_URL", server.url + "/")
    monkeypatch.setenv("FIREBREAK_API_KEY", KEY)

    with Gate.from_env(AGENT) as gate, pytest.raises(AgentKilled, match="from env"):
        gate.check()


def test_fallback_response_is_the_gate_documents_message(server, make_gate):
    server.doc = gate_doc("killed", fallback_message=FALLBACK)

    assert make_gate().fallback_response() == FALLBACK


def test_fallback_response_uses_the_last_document_read_when_the_server_fails(server, make_gate):
    gate = make_gate(max_staleness=0)
    gate.check()
    server.mode = "500"

    assert gate.fallback_response() == FALLBACK


@pytest.mark.parametrize("broken", ["refused", "401", "timeout", "unconfigured"])
def test_fallback_response_is_a_generic_message_when_the_gate_was_never_readable(server, broken):
    kwargs: dict = {"url": server.url, "api_key": KEY, "timeout": 0.2}
    if broken == "refused":
        kwargs["url"] = f"http://127.0.0.1:{free_port()}"
    elif broken == "401":
        kwargs["api_key"] = "fbk_unknown"
    elif broken == "timeout":
        server.mode, server.sleep = "sleep", 1.0
    else:
        kwargs = {}

    with Gate(AGENT, **kwargs) as gate:
        assert gate.fallback_response() == GENERIC_FALLBACK


def test_fallback_response_is_generic_when_the_document_has_none(server, make_gate):
    server.doc = gate_doc("killed", fallback_message="")

    assert make_gate().fallback_response() == GENERIC_FALLBACK
