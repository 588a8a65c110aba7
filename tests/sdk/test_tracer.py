"""The tracer: runs arrive in a real Firebreak (live_server); buffering, retries and failure handling
against small local HTTP servers that misbehave on purpose; the OpenTelemetry path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
from django.apps import apps
from firebreak_sdk import (
    AgentKilled,
    FirebreakStop,
    ToolDisabled,
    Tracer,
    action_hash,
    configure_opentelemetry,
)
from firebreak_sdk.encode import encode_span
from firebreak_sdk.tracer import _retry_after
from opentelemetry import trace as otel_trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agents.keys.services import api_key_create
from core.roles import roles_seed
from incidents.taxonomy import taxonomy_seed
from traces.models import Step, Trace

from .conftest import free_port

AGENT = "refund-bot"
KEY = "fbk_test_key"
NATIVE_FIELDS = {
    "trace_id", "span_id", "parent_span_id", "name", "start_time", "end_time", "agent", "kind", "status",
    "error_message", "trace_status", "session_id", "user_id", "input_class", "model", "model_version",
    "prompt_version", "agent_name", "tool_name", "tool_arguments", "input", "output", "tokens_in", "tokens_out",
    "cost", "finish_reason", "attributes",
}  # fmt: skip


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def _reference_data(transactional_db):
    """live_server needs committed data, so each test's tables are flushed afterwards, taking what the
    migrations seeded with them: put the roles and the taxonomy back (as tests/e2e/conftest.py does)."""
    roles_seed(apps)
    taxonomy_seed(apps)


@pytest.fixture
def firebreak(live_server, _reference_data, make_agent):
    """A real Firebreak with agent ``refund-bot`` and its ingest+gate key."""
    agent = make_agent(AGENT, allowed_tools=["lookup_order", "send_email", "issue_refund"])
    _, key = api_key_create(agent=agent, scopes=["ingest", "gate"])
    return SimpleNamespace(url=live_server.url, agent=agent, key=key)


@pytest.fixture
def make_tracer():
    """Tracers that are closed after the test (briefly: a test's server may be gone by then)."""
    tracers: list[Tracer] = []

    def make(agent: str = AGENT, **kwargs) -> Tracer:
        kwargs.setdefault("flush_interval", 0.05)
        tracer = Tracer(agent, **kwargs)
        tracers.append(tracer)
        return tracer

    yield make
    for tracer in tracers:
        tracer.close(timeout=0.2)


class IngestServer(ThreadingHTTPServer):
    """POST /api/v1/ingest that answers from ``script`` ((status, headers, body) per request, then 200s),
    optionally sleeping first, and records every request."""

    daemon_threads = True

    def __init__(self, script=(), sleep: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), IngestHandler)
        self.script = list(script)
        self.sleep = sleep
        self.requests: list[SimpleNamespace] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def spans(self) -> list[dict]:
        return [span for r in self.requests if r.status == 200 for span in r.json["spans"]]


class IngestHandler(BaseHTTPRequestHandler):
    server: IngestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        with server.lock:
            status, headers, reply = server.script.pop(0) if server.script else (200, {}, None)
            server.requests.append(
                SimpleNamespace(
                    at=time.monotonic(),
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=body,
                    json=json.loads(body),
                    status=status,
                )
            )
        if server.sleep:
            time.sleep(server.sleep)
        if reply is None:
            n = len(json.loads(body)["spans"])
            reply = {"received": n, "stored": n, "duplicates": 0, "traces": 1} if status == 200 else {"error": "no"}
        payload = json.dumps(reply).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


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


def three_step_run(tracer: Tracer):
    """A run with one model call and two tool calls (one timed with ``step``, one recorded afterwards)."""
    with tracer.run(
        session_id="conv-7",
        user_id="user-42",
        input_class="refund",
        input="Please refund order 42",
        prompt_version="refund@v3",
        model_version="gpt-x-2026-01",
    ) as run:
        time.sleep(0.05)  # the model call
        run.llm(
            name="plan",
            model="gpt-x-2026-01",
            input="Please refund order 42",
            output="call lookup_order",
            tokens_in=120,
            tokens_out=12,
            cost=0.0031,
            finish_reason="tool_calls",
            duration=0.05,
        )
        with run.step("tool", tool="lookup_order", arguments={"order_id": 42}) as step:
            time.sleep(0.01)
            step.output = {"status": "delivered", "total": 30}
        run.tool("send_email", {"to": "user-42", "api_key": "sk-secret"}, output="sent")
        run.output = "Refunded $30."
    return run


# --- a real Firebreak --------------------------------------------------------------------------------------


def test_a_run_with_an_llm_step_and_two_tool_steps_arrives_in_firebreak(firebreak, make_tracer):
    tracer = make_tracer(url=firebreak.url, api_key=firebreak.key)
    run = three_step_run(tracer)
    assert tracer.flush(timeout=10)
    assert (tracer.sent, tracer.failed, tracer.dropped) == (4, 0, 0)

    trace = Trace.objects.get(trace_id=run.trace_id)
    assert trace.agent == firebreak.agent
    assert trace.status == "ok"
    assert (trace.session_id, trace.user_id, trace.input_class) == ("conv-7", "user-42", "refund")
    assert (trace.root_input, trace.root_output) == ("Please refund order 42", "Refunded $30.")
    assert (trace.prompt_version, trace.model_version) == ("refund@v3", "gpt-x-2026-01")
    assert (trace.step_count, trace.tool_call_count, trace.error_count) == (4, 2, 0)
    assert (trace.tokens_in, trace.tokens_out, trace.cost) == (120, 12, Decimal("0.003100"))
    assert trace.started_at <= trace.ended_at

    steps = {s.name: s for s in Step.objects.filter(trace=trace)}
    assert set(steps) == {AGENT, "plan", "lookup_order", "send_email"}
    root = steps[AGENT]
    assert (root.kind, root.span_id, root.parent_span_id, root.status) == ("agent", run.span_id, "", "ok")
    for name in ("plan", "lookup_order", "send_email"):
        assert steps[name].parent_span_id == run.span_id
        assert steps[name].status == "ok"
        assert root.started_at <= steps[name].started_at <= steps[name].ended_at <= root.ended_at
    llm = steps["plan"]
    assert (llm.kind, llm.model, llm.tokens_in, llm.tokens_out) == ("llm", "gpt-x-2026-01", 120, 12)
    assert (llm.cost, llm.finish_reason, llm.output) == (Decimal("0.003100"), "tool_calls", "call lookup_order")
    assert 45 <= llm.duration_ms <= 1000
    lookup = steps["lookup_order"]
    assert (lookup.kind, lookup.tool_name, lookup.tool_arguments) == ("tool", "lookup_order", {"order_id": 42})
    assert lookup.action_hash == action_hash("lookup_order", {"order_id": 42})  # the SDK and server agree
    assert json.loads(lookup.output) == {"status": "delivered", "total": 30}
    assert lookup.duration_ms >= 10
    email = steps["send_email"]
    assert (email.kind, email.tool_name, email.output) == ("tool", "send_email", "sent")
    assert email.tool_arguments == {"to": "user-42", "api_key": "[REDACTED]"}


def test_a_run_that_raises_ends_in_error_and_a_gate_stop_ends_killed(firebreak, make_tracer):
    tracer = make_tracer(url=firebreak.url, api_key=firebreak.key)

    with pytest.raises(ValueError, match="garbage"), tracer.run(input="refund 1") as failed:
        step = failed.step("tool", tool="lookup_order", arguments={"order_id": 1})
        with step:
            raise ValueError("order service returned garbage")

    with pytest.raises(AgentKilled), tracer.run(input="refund 2") as killed:
        killed.tool("issue_refund", {"order_id": 2, "amount": 30}, output="ok")
        raise AgentKilled(AGENT, reason="runaway refunds", changed_by="alice")

    with tracer.run(input="refund 3") as caught:  # the agent catches the stop and serves its fallback
        try:
            raise ToolDisabled(AGENT, "issue_refund", changed_by="alice")
        except FirebreakStop as exc:
            caught.set_error(exc)
            caught.output = "A person will follow up."

    assert tracer.flush(timeout=10)
    assert (tracer.sent, tracer.failed) == (5, 0)

    trace = Trace.objects.get(trace_id=failed.trace_id)
    assert (trace.status, trace.error_count) == ("error", 2)
    message = "ValueError: order service returned garbage"
    assert Step.objects.get(trace=trace, kind="agent").error_message == message
    tool = Step.objects.get(trace=trace, kind="tool")
    assert (tool.status, tool.error_message, tool.parent_span_id) == ("error", message, failed.span_id)

    trace = Trace.objects.get(trace_id=killed.trace_id)
    assert trace.status == "killed"
    root = Step.objects.get(trace=trace, kind="agent")
    assert root.status == "error"
    assert root.error_message == "AgentKilled: refund-bot was killed by alice: runaway refunds"
    assert Step.objects.get(trace=trace, kind="tool").status == "ok"

    trace = Trace.objects.get(trace_id=caught.trace_id)
    assert (trace.status, trace.root_output) == ("killed", "A person will follow up.")


def test_awkward_values_never_cost_a_batch(firebreak, make_tracer):
    """Everything the SDK sends is valid for the server: long texts are cut, odd numbers and objects fixed."""
    tracer = make_tracer(url=firebreak.url, api_key=firebreak.key)
    cyclic: dict = {"a": 1}
    cyclic["self"] = cyclic
    with tracer.run("r" * 600, session_id="s" * 300, input={"messages": [{"role": "user", "content": "hi"}]}) as run:
        run.llm(model="m", tokens_in=-5, tokens_out=2**40, cost=float("nan"), output="\ud800 lone surrogate")
        run.tool("lookup_order", {(1, 2): "tuple key", "n": float("inf"), "obj": object(), "c": cyclic})
        run.tool("search", ("a", "b"), output=b"bytes", error=RuntimeError("upstream 502"))
        run.tool("send_email", "not an object", output="x" * 1_000_100, attributes={"when": datetime.now()})
    assert tracer.flush(timeout=10)
    assert (tracer.sent, tracer.failed) == (5, 0)

    trace = Trace.objects.get(trace_id=run.trace_id)
    assert len(trace.session_id) == 200
    assert json.loads(trace.root_input) == {"messages": [{"role": "user", "content": "hi"}]}
    steps = {s.name: s for s in Step.objects.filter(trace=trace)}
    root = steps["r" * 500]
    assert root.attributes["firebreak.truncated"] == ["name", "session_id"]
    llm = steps["m"]
    assert (llm.tokens_in, llm.tokens_out, llm.cost) == (0, 2**31 - 1, 0)
    lookup = steps["lookup_order"]
    assert lookup.tool_arguments["(1, 2)"] == "tuple key"
    assert lookup.tool_arguments["n"] == "inf"
    assert lookup.tool_arguments["c"] == {"a": 1, "self": "<cycle>"}
    search = steps["search"]
    assert (search.tool_arguments, search.status, search.error_message) == (
        ["a", "b"],
        "error",
        "RuntimeError: upstream 502",
    )
    email = steps["send_email"]
    assert email.tool_arguments == {"value": "not an object"}
    assert len(email.output) == 1_000_000
    assert email.attributes["firebreak.truncated"] == ["output"]


def test_a_key_for_another_agent_is_refused_once_and_logged(firebreak, make_tracer, caplog):
    tracer = make_tracer("someone-else", url=firebreak.url, api_key=firebreak.key)
    started = time.monotonic()
    with tracer.run() as run:
        run.tool("lookup_order", {"order_id": 1})
    assert tracer.flush(timeout=10)
    assert time.monotonic() - started < 2  # not retried
    assert (tracer.sent, tracer.failed) == (0, 2)
    assert not Trace.objects.filter(trace_id=run.trace_id).exists()
    assert "this key belongs to agent 'refund-bot'" in caplog.text
    assert "HTTP 403" in caplog.text


# --- what goes over the wire -------------------------------------------------------------------------------


def test_spans_are_native_json_with_real_timestamps_and_links(make_server, make_tracer):
    server = make_server()
    tracer = make_tracer(url=server.url + "/", api_key=KEY)
    before = datetime.now().astimezone()
    run = three_step_run(tracer)
    assert tracer.flush(timeout=5)
    after = datetime.now().astimezone()

    assert [r.path for r in server.requests] == ["/api/v1/ingest"]
    headers = server.requests[0].headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Content-Type"] == "application/json"
    spans = server.spans
    assert len(spans) == 4
    assert spans[-1]["span_id"] == run.span_id  # the root ends last
    for span in spans:
        assert set(span) <= NATIVE_FIELDS
        assert re.fullmatch(r"[0-9a-f]{32}", span["trace_id"]) and span["trace_id"] == run.trace_id
        assert re.fullmatch(r"[0-9a-f]{16}", span["span_id"])
        assert span["agent"] == AGENT
        start, end = datetime.fromisoformat(span["start_time"]), datetime.fromisoformat(span["end_time"])
        assert start.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= start <= end <= after
    assert len({s["span_id"] for s in spans}) == 4
    assert [s.get("parent_span_id") for s in spans] == [run.span_id] * 3 + [None]
    assert [s["kind"] for s in spans] == ["llm", "tool", "tool", "agent"]


def test_a_step_records_child_tool_calls_and_still_takes_its_tool_name(make_server, make_tracer):
    """``step.tool(...)`` records a child tool call, as ``run.tool(...)`` does (a sub-agent's tools); assigning
    ``step.tool`` names the step's own tool. The field used to hide the method: ``step.tool(...)`` raised."""
    server = make_server()
    tracer = make_tracer(url=server.url, api_key=KEY)
    with tracer.run() as run:
        with run.step("agent", "planner", agent_name="planner") as planner:
            lookup = planner.tool("lookup_runbook", {"service": "api"}, output={"runbook_id": "RB-1"})
        with run.step("tool", "restart") as restart:
            restart.tool = "restart_service"
    assert tracer.flush(timeout=5)

    spans = {span["span_id"]: span for span in server.spans}
    assert len(spans) == 4
    child = spans[lookup.span_id]
    assert child["parent_span_id"] == planner.span_id
    assert (child["kind"], child["name"], child["tool_name"]) == ("tool", "lookup_runbook", "lookup_runbook")
    assert child["tool_arguments"] == {"service": "api"}
    assert "tool_name" not in spans[planner.span_id]
    assert spans[restart.span_id]["tool_name"] == "restart_service"


def test_batches_follow_batch_size_and_flush_interval(make_server, make_tracer):
    server = make_server()
    tracer = make_tracer(url=server.url, api_key=KEY, batch_size=10, flush_interval=0.2)
    with tracer.run() as run:
        for i in range(24):
            run.tool("search", {"q": i})
    assert tracer.flush(timeout=5)
    assert [len(r.json["spans"]) for r in server.requests] == [10, 10, 5]

    with tracer.run():  # no flush: it goes out on its own after flush_interval
        pass
    deadline = time.monotonic() + 3
    while tracer.sent < 26 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tracer.sent == 26


# --- never block, never raise ------------------------------------------------------------------------------


def test_a_full_buffer_drops_spans_instead_of_blocking(make_server, make_tracer, caplog):
    server = make_server(sleep=2.0)  # answers nothing for two seconds
    tracer = make_tracer(url=server.url, api_key=KEY, max_buffer=50, batch_size=10, flush_interval=0.01)
    durations = []
    with tracer.run() as run:
        run.tool("search", {"q": "first"})
        time.sleep(0.1)  # the worker is now stuck in a request with the first span
        for i in range(2000):
            started = time.perf_counter()
            run.tool("search", {"q": i}, output="result")
            durations.append(time.perf_counter() - started)
    durations.sort()
    assert durations[len(durations) * 99 // 100] < 0.005, f"p99 {durations[-20] * 1000:.2f} ms"
    assert durations[-1] < 0.05, f"max {durations[-1] * 1000:.2f} ms"
    assert tracer.sent == 0
    assert tracer.pending <= 51
    assert tracer.dropped >= 2002 - 51
    assert tracer.dropped + tracer.pending == 2002
    assert caplog.text.count("buffer full") == 1

    started = time.monotonic()
    tracer.close(timeout=0.2)
    assert time.monotonic() - started < 1
    with tracer.run():  # after close: dropped, no error
        pass
    assert tracer.dropped >= 2003 - 51


def test_the_agent_carries_on_when_firebreak_is_down(make_tracer, caplog):
    tracer = make_tracer(url=f"http://127.0.0.1:{free_port()}", api_key=KEY, max_retries=2)
    tracer.BACKOFF_BASE = 0.01
    slowest = 0.0
    for i in range(20):
        started = time.perf_counter()
        with tracer.run(input=f"question {i}") as run:
            run.llm(model="m", tokens_in=10, tokens_out=5)
            with run.step("tool", tool="lookup_order", arguments={"order_id": i}) as step:
                step.output = "ok"
            run.tool("send_email", {"to": "x"})
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.05
    assert tracer.flush(timeout=5)  # every batch given up on after its retries
    assert (tracer.sent, tracer.failed + tracer.dropped) == (0, 80)
    assert "ConnectError" in caplog.text and "after 3 attempts" in caplog.text


def test_an_unconfigured_tracer_works_and_drops_everything(monkeypatch, caplog):
    monkeypatch.delenv("FIREBREAK_URL", raising=False)
    monkeypatch.delenv("FIREBREAK_API_KEY", raising=False)
    tracer = Tracer.from_env(AGENT)
    assert not tracer.enabled
    assert "disabled" in caplog.text
    with tracer.run() as run:
        run.tool("search", {"q": 1})
    assert (tracer.dropped, tracer.sent) == (2, 0)
    assert tracer.flush(timeout=0.1)
    tracer.close()


# --- retries -----------------------------------------------------------------------------------------------


def test_503_twice_then_200_delivers_the_batch_once(make_server, make_tracer):
    server = make_server([(503, {"Retry-After": "0"}, None), (503, {"Retry-After": "0"}, None)])
    tracer = make_tracer(url=server.url, api_key=KEY)
    three_step_run(tracer)
    assert tracer.flush(timeout=5)
    assert [r.status for r in server.requests] == [503, 503, 200]
    assert len({r.body for r in server.requests}) == 1  # the same batch each time
    assert (tracer.sent, tracer.failed) == (4, 0)


def test_a_400_is_not_retried_and_its_error_is_logged(make_server, make_tracer, caplog):
    server = make_server([(400, {}, {"error": "spans[0].cost: must be a number from 0 to 99999999"})])
    tracer = make_tracer(url=server.url, api_key=KEY)
    three_step_run(tracer)
    assert tracer.flush(timeout=5)
    assert len(server.requests) == 1
    assert (tracer.sent, tracer.failed) == (0, 4)
    assert "HTTP 400: spans[0].cost: must be a number from 0 to 99999999" in caplog.text


def test_a_429_is_retried(make_server, make_tracer):
    server = make_server([(429, {"Retry-After": "0"}, {"error": "slow down"})])
    tracer = make_tracer(url=server.url, api_key=KEY)
    three_step_run(tracer)
    assert tracer.flush(timeout=5)
    assert [r.status for r in server.requests] == [429, 200]
    assert (tracer.sent, tracer.failed) == (4, 0)


def test_retry_after_is_honoured_and_retries_end_after_max_retries(make_server, make_tracer, caplog):
    server = make_server([(503, {"Retry-After": "1"}, None)] + [(500, {}, None)] * 10)
    tracer = make_tracer(url=server.url, api_key=KEY, max_retries=3)
    tracer.BACKOFF_BASE = 0.02
    with tracer.run():
        pass
    assert tracer.flush(timeout=5)
    gaps = [b.at - a.at for a, b in zip(server.requests, server.requests[1:], strict=False)]
    assert len(server.requests) == 4
    assert 0.95 <= gaps[0] < 1.5  # Retry-After: 1
    assert 0.02 <= gaps[1] <= 0.2 and 0.04 <= gaps[2] <= 0.3  # backoff: 0.04 then 0.08 s, each less 0-50% jitter
    assert (tracer.sent, tracer.failed) == (0, 1)
    assert "after 4 attempts" in caplog.text


def test_a_413_splits_the_batch(make_server, make_tracer):
    server = make_server([(413, {}, {"error": "body is over the limit"})])
    tracer = make_tracer(url=server.url, api_key=KEY)
    three_step_run(tracer)
    assert tracer.flush(timeout=5)
    assert [len(r.json["spans"]) for r in server.requests] == [4, 2, 2]
    assert (tracer.sent, tracer.failed) == (4, 0)


def test_retry_after_parsing():
    assert _retry_after("0") == 0
    assert _retry_after("7") == 7
    assert _retry_after("100000") == 60  # capped
    assert _retry_after("soon") is None
    assert _retry_after(None) is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past


def test_encoded_spans_fit_the_native_schema():
    span = json.loads(encode_span({"trace_id": "a" * 32, "span_id": "b" * 16, "name": "", "kind": "tool", "cost": -1}))
    assert span == {"trace_id": "a" * 32, "span_id": "b" * 16, "name": "tool", "kind": "tool"}


# --- process life ------------------------------------------------------------------------------------------


def test_spans_buffered_at_exit_are_sent(make_server):
    server = make_server()
    script = textwrap.dedent(
        f"""
        from firebreak_sdk import Tracer
        tracer = Tracer("{AGENT}", url="{server.url}", api_key="{KEY}", flush_interval=60)
        with tracer.run(input="last words") as run:
            run.tool("send_email", {{"to": "x"}})
        print(run.trace_id)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert {s["trace_id"] for s in server.spans} == {result.stdout.strip()}
    assert len(server.spans) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_sends_its_own_spans(make_server, make_tracer):
    server = make_server()
    tracer = make_tracer(url=server.url, api_key=KEY)
    with tracer.run(input="parent"):
        pass
    assert tracer.flush(timeout=5)
    pid = os.fork()
    if pid == 0:  # the child: a fresh buffer and worker thread
        code = 1
        try:
            with tracer.run(input="child"):
                pass
            code = 0 if tracer.flush(timeout=5) and tracer.sent == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with tracer.run(input="parent again"):
        pass
    assert tracer.flush(timeout=5)
    assert sorted(s["input"] for s in server.spans) == ["child", "parent", "parent again"]


# --- OpenTelemetry -----------------------------------------------------------------------------------------


def test_configure_opentelemetry_names_the_missing_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ImportError, match=r"opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http"):
        configure_opentelemetry(AGENT, url="http://x", api_key=KEY)


def test_configure_opentelemetry_creates_a_provider_for_the_agent(monkeypatch):
    installed = []
    monkeypatch.setattr(otel_trace, "get_tracer_provider", otel_trace.ProxyTracerProvider)  # nothing configured yet
    monkeypatch.setattr(otel_trace, "set_tracer_provider", installed.append)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.setenv("FIREBREAK_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("FIREBREAK_API_KEY", KEY)
    provider = configure_opentelemetry(AGENT)
    try:
        assert isinstance(provider, TracerProvider) and installed == [provider]
        assert provider.resource.attributes["firebreak.agent"] == AGENT
        assert provider.resource.attributes["service.name"] == AGENT
        (processor,) = provider._active_span_processor._span_processors
        assert isinstance(processor, BatchSpanProcessor)
        assert processor._batch_processor._max_queue_size == 16_384  # not the default 2,048
        assert processor._batch_processor._exporter._endpoint == "http://127.0.0.1:9/v1/traces"

        # An SDK provider is installed: reuse it.
        monkeypatch.setattr(otel_trace, "get_tracer_provider", lambda: provider)
        assert configure_opentelemetry(AGENT) is provider
        assert installed == [provider]
        assert len(provider._active_span_processor._span_processors) == 2
        with pytest.raises(ValueError, match="max_export_batch_size"):
            configure_opentelemetry(AGENT, tracer_provider=provider, max_queue_size=100, max_export_batch_size=512)
    finally:
        provider.shutdown()


def test_opentelemetry_spans_arrive_over_otlp(firebreak):
    probe = httpx.post(
        f"{firebreak.url}/v1/traces",
        content=ExportTraceServiceRequest().SerializeToString(),
        headers={"Authorization": f"Bearer {firebreak.key}", "Content-Type": "application/x-protobuf"},
    )
    if probe.status_code == 404:
        pytest.xfail("OTLP endpoint not yet merged")

    provider = TracerProvider(resource=Resource.create({"service.name": "refund-service"}))
    configure_opentelemetry(AGENT, url=firebreak.url, api_key=firebreak.key, tracer_provider=provider)
    otel = provider.get_tracer("refund-agent-tests")
    tool_attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup_order",
        "gen_ai.tool.call.arguments": json.dumps({"order_id": 42}),
    }
    with (
        otel.start_as_current_span("refund-run", attributes={"gen_ai.operation.name": "invoke_agent"}) as root,
        otel.start_as_current_span("execute_tool lookup_order", attributes=tool_attributes),
    ):
        pass
    try:
        assert provider.force_flush(timeout_millis=10_000)
    finally:
        provider.shutdown()
    trace = Trace.objects.get(trace_id=format(root.get_span_context().trace_id, "032x"))
    assert trace.agent == firebreak.agent
    assert trace.step_count == 2
    assert Step.objects.get(trace=trace, name="execute_tool lookup_order").tool_name == "lookup_order"
