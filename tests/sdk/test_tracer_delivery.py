"""The tracer against small local HTTP servers that misbehave on purpose: what goes over the wire,
never blocking nor raising in the agent, retries, and the process's life (exit, fork)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta

import pytest
from firebreak_sdk import (
    Tracer,
)
from firebreak_sdk.encode import encode_span
from firebreak_sdk.tracer import _retry_after

from .conftest import free_port
from .ingest_server import three_step_run

AGENT = "refund-bot"
KEY = "fbk_test_key"
NATIVE_FIELDS = {
    "trace_id", "span_id", "parent_span_id", "name", "start_time", "end_time", "agent", "kind", "status",
    "error_message", "trace_status", "session_id", "user_id", "input_class", "model", "model_version",
    "prompt_version", "agent_name", "tool_name", "tool_arguments", "input", "output", "tokens_in", "tokens_out",
    "cost", "finish_reason", "attributes",
}  # fmt: skip


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
    # Blocking on the full buffer would hold a call until the stuck request ends (two seconds); the bounds are
    # far from that and far from a busy machine's noise (how fast it is, bench/ measures).
    assert sum(durations) < 1.0, f"2,000 calls took {sum(durations):.2f} s"
    assert max(durations) < 0.5, f"a call took {max(durations) * 1000:.0f} ms"
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


def test_a_hanging_firebreak_never_slows_the_agent(make_server, make_tracer):
    server = make_server(sleep=1.0)  # every request takes a second to answer
    tracer = make_tracer(url=server.url, api_key=KEY, batch_size=4, flush_interval=0.01)
    slowest = 0.0
    for i in range(10):
        started = time.perf_counter()
        with tracer.run(input=f"question {i}") as run:
            run.tool("lookup_order", {"order_id": i}, output="ok")
        slowest = max(slowest, time.perf_counter() - started)
    # A run that waited on delivery would take the server's whole second; the margin is for a busy machine.
    assert slowest < 0.5, f"a run took {slowest:.3f} s"


def test_the_agent_carries_on_when_firebreak_is_down(make_tracer, caplog):
    tracer = make_tracer(url=f"http://127.0.0.1:{free_port()}", api_key=KEY, max_retries=2)
    tracer.BACKOFF_BASE = 0.01
    for i in range(20):
        with tracer.run(input=f"question {i}") as run:
            run.llm(model="m", tokens_in=10, tokens_out=5)
            with run.step("tool", tool="lookup_order", arguments={"order_id": i}) as step:
                step.output = "ok"
            run.tool("send_email", {"to": "x"})
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


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_are_retried_as_otlp_says(make_server, make_tracer, status):
    server = make_server([(status, {"Retry-After": "0"}, None)])
    tracer = make_tracer(url=server.url, api_key=KEY)
    three_step_run(tracer)
    assert tracer.flush(timeout=5)
    assert [r.status for r in server.requests] == [status, 200]
    assert (tracer.sent, tracer.failed) == (4, 0)


def test_a_500_is_not_retried_as_otlp_says(make_server, make_tracer):
    server = make_server([(500, {}, None)])
    tracer = make_tracer(url=server.url, api_key=KEY)
    three_step_run(tracer)
    assert tracer.flush(timeout=5)
    assert [r.status for r in server.requests] == [500]
    assert (tracer.sent, tracer.failed) == (0, 4)


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
    server = make_server([(503, {"Retry-After": "1"}, None)] + [(502, {}, None)] * 10)
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
