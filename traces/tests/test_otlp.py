"""POST /v1/traces: OTLP/HTTP protobuf and JSON from the real OpenTelemetry SDK, gzip, mapping, errors."""

import gzip
import json

import pytest
from django.test import Client

from agents.keys.services import api_key_create
from traces.models import Step, Trace
from traces.tests.otel_helpers import genai_agent_run, openinference_run, otlp_json, protobuf, record

URL = "/v1/traces"
PB = "application/x-protobuf"


@pytest.fixture
def agent(make_agent):
    return make_agent("support-triage", allowed_tools=["lookup_order", "issue_refund"])


@pytest.fixture
def key(agent):
    return api_key_create(agent=agent, scopes=["ingest"])[1]


def post(body: bytes, key=None, content_type=PB, **headers):
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return Client().post(URL, data=body, content_type=content_type, **headers)


def steps_by_kind():
    return {s.kind: s for s in Step.objects.all()}


def test_protobuf_from_the_sdk_maps_genai_conventions(agent, key):
    spans = record(lambda t: genai_agent_run(t))
    response = post(protobuf(spans), key)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PB
    trace = Trace.objects.get()
    assert trace.agent == agent
    assert (trace.session_id, trace.user_id, trace.input_class, trace.prompt_version) == (
        "conv-42",
        "user-0042",
        "order-status",
        "triage@v14",
    )
    assert trace.status == "ok"
    assert "Where is order 42?" in trace.root_input
    assert (trace.step_count, trace.tool_call_count, trace.tokens_in, trace.tokens_out) == (3, 1, 740, 10)
    assert trace.model_version == "gpt-4.1-2025-04-14"
    steps = steps_by_kind()
    assert steps["agent"].agent_name == "support-triage"
    llm = steps["llm"]
    assert (llm.model, llm.finish_reason) == ("gpt-4.1-2025-04-14", "length")
    assert llm.attributes["custom.team"] == "support"  # unmapped attributes are kept
    assert "gen_ai.usage.input_tokens" not in llm.attributes
    tool = steps["tool"]
    assert tool.tool_name == "lookup_order"
    assert tool.tool_arguments["order_id"] == 42
    assert tool.tool_arguments["api_key"].startswith("[REDACTED:key:")
    assert json.loads(tool.output) == {"status": "shipped"}
    assert tool.parent_span_id == steps["agent"].span_id
    assert len(tool.action_hash) == 16


def test_json_encoding_maps_the_same(agent, key):
    spans = record(lambda t: genai_agent_run(t))
    response = post(otlp_json(spans), key, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {}
    tool = Step.objects.get(kind="tool")
    assert tool.tool_arguments["order_id"] == 42
    assert Trace.objects.get().tokens_in == 740


def test_gzip_bodies_are_accepted(agent, key):
    body = gzip.compress(protobuf(record(lambda t: genai_agent_run(t))))
    response = post(body, key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert Step.objects.count() == 3


def test_openinference_mapping(agent, key):
    spans = record(openinference_run)
    assert post(protobuf(spans), key).status_code == 200
    trace = Trace.objects.get()
    assert (trace.session_id, trace.user_id, trace.root_input, trace.root_output) == (
        "sess-7",
        "user-7",
        "refund order 9",
        "refunded",
    )
    steps = steps_by_kind()
    llm = steps["llm"]
    assert (llm.model, llm.tokens_in, llm.tokens_out, str(llm.cost)) == ("claude-3-5-sonnet", 300, 60, "0.002100")
    assert "user: refund order 9" in llm.input
    assert llm.attributes["firebreak.requested_tool"] == "issue_refund"
    assert steps["tool"].tool_name == "issue_refund"
    assert steps["tool"].tool_arguments == {"order": 9, "amount": 20}
    assert steps["retrieval"].input == "refund policy"
    assert str(trace.cost) == "0.002100"


def test_error_status_and_message_are_kept(agent, key):
    post(protobuf(record(lambda t: genai_agent_run(t, error=True))), key)
    tool = Step.objects.get(kind="tool")
    assert (tool.status, tool.error_message) == ("error", "HTTP 500 from orders")
    assert Trace.objects.get().error_count == 1


def test_the_same_export_twice_stores_nothing_new(agent, key):
    body = protobuf(record(lambda t: genai_agent_run(t, loop_tool_calls=3)))
    assert post(body, key).status_code == 200
    assert post(body, key).status_code == 200
    assert Step.objects.count() == 5
    assert Trace.objects.get().step_count == 5


def test_service_name_names_the_agent_for_a_persons_key(agent, responder):
    key = api_key_create(user=responder, scopes=["api"])[1]
    response = post(protobuf(record(lambda t: genai_agent_run(t), service_name="support-triage")), key)
    assert response.status_code == 200
    assert Trace.objects.get().agent == agent


def test_an_agent_keys_service_name_does_not_have_to_match_its_slug(agent, key):
    response = post(protobuf(record(lambda t: genai_agent_run(t), service_name="triage-svc-prod")), key)
    assert response.status_code == 200
    assert Trace.objects.get().agent == agent


def test_an_agent_key_cannot_send_spans_for_another_agent(agent, key, make_agent):
    make_agent("other-agent")
    spans = record(lambda t: genai_agent_run(t), resource_attrs={"firebreak.agent": "other-agent"})
    response = post(protobuf(spans), key)
    assert response.status_code == 403
    assert not Step.objects.exists()


def test_another_agents_key_replaying_an_export_gets_its_own_trajectory(agent, key, make_agent):
    body = protobuf(record(lambda t: genai_agent_run(t, loop_tool_calls=3), service_name="support-triage"))
    assert post(body, key).status_code == 200
    victim = Trace.objects.get()
    before = (victim.step_count, victim.tokens_in, victim.cost, victim.status, victim.ended_at)
    other_key = api_key_create(agent=make_agent("other-agent"), scopes=["ingest"])[1]
    # the same trace id and span ids, and a service.name naming the victim: the key's agent owns them
    assert post(body, other_key).status_code == 200
    victim.refresh_from_db()
    assert (victim.step_count, victim.tokens_in, victim.cost, victim.status, victim.ended_at) == before
    assert Step.objects.filter(trace=victim).count() == 5
    copy = Trace.objects.get(trace_id=victim.trace_id, agent__slug="other-agent")
    assert copy.step_count == 5 and Step.objects.filter(trace=copy).count() == 5


def test_empty_export_is_accepted(agent, key):
    assert post(b'{"resourceSpans": []}', key, content_type="application/json").status_code == 200
    assert not Trace.objects.exists()


def bad_json_span(**over):
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "startTimeUnixNano": "1700000000000000000"}
    span.update(over)
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def bad_json_export(resource_spans):
    return json.dumps({"resourceSpans": resource_spans}).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "message"),
    [
        (b"\xff\xff\xff garbage", PB, {}, 400, "not a valid OTLP"),
        (b"{oops", "application/json", {}, 400, "not valid JSON"),
        (bad_json_span(traceId="q" * 32), "application/json", {}, 400, "traceId: must be hex"),
        (bad_json_span(traceId="00" * 16), "application/json", {}, 400, "not all zero"),
        (bad_json_span(spanId="abcd"), "application/json", {}, 400, "spanId"),
        (bad_json_span(startTimeUnixNano=None), "application/json", {}, 400, "startTimeUnixNano: required"),
        (bad_json_span(endTimeUnixNano="1"), "application/json", {}, 400, "before startTimeUnixNano"),
        # Each level of the export in a shape OTLP does not have: a 400 that names it, never a 500.
        (bad_json_export([{"resource": ["x"]}]), "application/json", {}, 400, "resourceSpans[0].resource: must be"),
        (bad_json_export([{"scopeSpans": 5}]), "application/json", {}, 400, "resourceSpans[0].scopeSpans: must be"),
        (bad_json_export([{"scopeSpans": ["x"]}]), "application/json", {}, 400, "scopeSpans[0]: must be an object"),
        (bad_json_export([{"scopeSpans": [{"spans": 5}]}]), "application/json", {}, 400, "spans: must be an array"),
        (bad_json_span(status="error"), "application/json", {}, 400, "spans[0].status: must be an object"),
        (b"spans", "text/plain", {}, 415, "Content-Type"),
        (b"not gzip", PB, {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "not valid gzip"),
        (b"x", PB, {"HTTP_CONTENT_ENCODING": "br"}, 415, "Content-Encoding"),
    ],
)
def test_bad_exports_get_a_clear_error_and_write_nothing(agent, key, body, content_type, headers, status, message):
    response = post(body, key, content_type=content_type, **headers)
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    assert not Trace.objects.exists()


def test_a_gzip_bomb_is_refused(agent, key, settings):
    settings.FIREBREAK_INGEST_MAX_BYTES = 10_000
    body = gzip.compress(b"\x00" * 5_000_000)
    assert len(body) < 10_000
    response = post(body, key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413


def test_attribute_values_in_odd_shapes_never_fail_with_a_500(agent, key):
    """Attribute values of any shape OTLP allows (arrays where a string is usual) and OTLP/JSON pairs and
    values in shapes it does not have (a number as key, an array where an object goes) never fail the export."""

    def arrays(tracer):
        with tracer.start_as_current_span("odd") as span:
            span.set_attribute("gen_ai.operation.name", ["chat"])
            span.set_attribute("traceloop.span.kind", ["tool"])
            span.set_attribute("firebreak.trace_status", ["killed"])

    response = post(protobuf(record(arrays)), key)
    assert response.status_code == 400, response.content  # a run status must be a string
    assert "firebreak.trace_status" in response.json()["error"]

    def array_kinds(tracer):
        with tracer.start_as_current_span("odd") as span:
            span.set_attribute("gen_ai.operation.name", ["chat"])
            span.set_attribute("traceloop.span.kind", ["tool"])

    assert post(protobuf(record(array_kinds)), key).status_code == 200
    assert Step.objects.get().kind == "other"

    odd = [
        {"key": 5, "value": {"stringValue": "a number is no key"}},
        {"key": "custom.list", "value": {"arrayValue": ["not", "an object"]}},
        {"key": "custom.kv", "value": {"kvlistValue": 7}},
        {"key": "custom.team", "value": {"stringValue": "support"}},
    ]
    body = bad_json_span(spanId="ef" * 8, status={"code": ["x"]}, attributes=odd, events={"not": "an array"})
    response = post(body, key, content_type="application/json")
    assert response.status_code == 200, response.content
    step = Step.objects.get(span_id="ef" * 8)
    assert step.status == "unset"
    assert step.attributes == {"custom.list": [], "custom.kv": {}, "custom.team": "support"}


def test_no_key_is_401_and_a_viewer_is_403(agent, viewer):
    body = protobuf(record(lambda t: genai_agent_run(t)))
    assert post(body).status_code == 401
    c = Client()
    c.force_login(viewer)
    assert c.post(URL, data=body, content_type=PB).status_code == 403
    assert not Trace.objects.exists()


def _langchain_openinference_run(tracer):
    """The attribute shapes OpenInference's LangChain instrumentor sends for a LangGraph run: a root CHAIN,
    a node CHAIN with ``metadata.langgraph_node``, and an LLM span whose ``output.value`` is LangChain's raw
    ``generations`` payload beside the flattened output messages."""
    generations = {"generations": [[{"text": "", "message": {"kwargs": {"content": "Order 9 is on its way."}}}]]}
    with tracer.start_as_current_span("LangGraph") as root:
        root.set_attribute("openinference.span.kind", "CHAIN")
        root.set_attribute("input.value", json.dumps({"messages": [["user", "where is order 9?"]]}))
        with tracer.start_as_current_span("agent") as node:
            node.set_attribute("openinference.span.kind", "CHAIN")
            node.set_attribute("metadata", json.dumps({"langgraph_step": 1, "langgraph_node": "agent"}))
            with tracer.start_as_current_span("ChatOpenAI") as llm:
                llm.set_attribute("openinference.span.kind", "LLM")
                llm.set_attribute("llm.model_name", "gpt-4o-mini")
                llm.set_attribute("input.value", json.dumps({"messages": [[{"kwargs": {"content": "x"}}]]}))
                llm.set_attribute("input.mime_type", "application/json")
                llm.set_attribute("llm.input_messages.0.message.role", "user")
                llm.set_attribute("llm.input_messages.0.message.content", "where is order 9?")
                llm.set_attribute("output.value", json.dumps(generations))
                llm.set_attribute("output.mime_type", "application/json")
                llm.set_attribute("llm.output_messages.0.message.role", "assistant")
                llm.set_attribute("llm.output_messages.0.message.content", "Order 9 is on its way.")


def test_openinference_langchain_spans_read_as_messages_with_the_graph_as_the_agent(agent, key):
    assert post(protobuf(record(_langchain_openinference_run)), key).status_code == 200
    steps = {s.name: s for s in Step.objects.all()}
    assert steps["LangGraph"].kind == "agent"  # the top-level chain is the run, not "other"
    assert (steps["agent"].kind, steps["agent"].agent_name) == ("other", "agent")
    llm = steps["ChatOpenAI"]
    assert (llm.kind, llm.model, llm.agent_name) == ("llm", "gpt-4o-mini", "")
    assert llm.output == "assistant: Order 9 is on its way."  # the message, not the raw generations JSON
    assert llm.input == "user: where is order 9?"


def test_genai_message_arrays_read_as_text(agent, key):
    def run(tracer):
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", "gpt-4o")
            span.set_attribute("gen_ai.input.messages", json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "refund order 9"}]}]))  # fmt: skip
            span.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": "Looking it up."},
                {"type": "tool_call", "name": "lookup_order", "arguments": {"order": 9}}]}]))  # fmt: skip

    assert post(protobuf(record(run)), key).status_code == 200
    llm = Step.objects.get(kind="llm")
    assert llm.input == "user: refund order 9"
    assert llm.output == 'assistant: Looking it up. [tool call lookup_order({"order": 9})]'
