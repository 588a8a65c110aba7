"""The tracer: runs arrive in a real Firebreak (live_server); buffering, retries and failure handling
against small local HTTP servers that misbehave on purpose; the OpenTelemetry path."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.apps import apps
from firebreak_sdk import (
    AgentKilled,
    FirebreakStop,
    ToolDisabled,
    ToolNotAllowed,
    action_hash,
    configure_opentelemetry,
)
from firebreak_sdk.encode import iso_time
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agents.keys.services import api_key_create
from core.roles import roles_seed
from incidents.taxonomy import taxonomy_seed
from traces.models import Step, Trace
from traces.selectors import payloads

from .ingest_server import three_step_run

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
    assert email.tool_arguments["to"] == "user-42"
    assert email.tool_arguments["api_key"].startswith("[REDACTED:key:")


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


def test_a_refused_call_arrives_as_a_refusal_span_and_the_viewer_says_so(firebreak, make_tracer, client, make_user):
    tracer = make_tracer(url=firebreak.url, api_key=firebreak.key)
    with tracer.run(input="merge it") as run:
        stop = ToolNotAllowed(AGENT, "merge_pull_request", allowed=["lookup_order"])
        run.refused(stop, {"pr": 4242})
        run.output = "I cannot merge pull requests."
    assert tracer.flush(timeout=10)

    trace = Trace.objects.get(trace_id=run.trace_id)
    assert (trace.status, trace.error_count) == ("ok", 1)  # the run answered: one call refused, the run not stopped
    step = Step.objects.get(trace=trace, kind="tool")
    assert (step.tool_name, step.tool_arguments, step.status) == ("merge_pull_request", {"pr": 4242}, "error")
    assert step.attributes["firebreak.refused"] == "ToolNotAllowed"
    assert "not among refund-bot's allowed tools" in step.error_message
    client.force_login(make_user("viewer"))
    html = client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "refused at the gate" in html


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
    # Over 64 KiB: kept whole apart from the row (the row holds a preview), not cut.
    assert "firebreak.truncated" not in email.attributes
    assert email.attributes["firebreak.apart"] == {"output": 1_000_100}
    assert payloads.step_value_get(trace=trace, span_id=email.span_id, field="output").text == "x" * 1_000_100


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


@pytest.mark.parametrize(
    "ns", [0, 999_999_000, 1_700_000_000_123_456_789, 1_700_000_001_000_000_000, 4102444799_999_999_000]
)
def test_span_times_are_written_as_datetime_writes_them_whatever_second_came_before(ns):
    seconds, rest = divmod(ns, 1_000_000_000)
    expected = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    assert iso_time(ns) == expected.isoformat(timespec="microseconds")
    assert iso_time(ns + 1000) == (expected + timedelta(microseconds=1)).isoformat(timespec="microseconds")
