"""What the SDK and the server must agree on, side by side.

Each side names its value as a constant (the SDK in firebreak_sdk.encode, .tracer, .otel and .gate; the server
in its settings, traces/ingest/parse/native.py, agents/gate.py and its URL names), and each test here fails when
one side changes without the other: batch and text limits, the span fields and values, the endpoints' paths,
the gate's Redis key and channel, and the fields of the gate document. (The SDK's and the server's action
hash are compared in test_guards.py.)
"""

from __future__ import annotations

import ast
import inspect
import json
from decimal import Decimal

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from firebreak_sdk import AgentKilled, Tracer
from firebreak_sdk import documents as sdk_documents
from firebreak_sdk import encode as sdk_encode
from firebreak_sdk import gate as sdk_gate
from firebreak_sdk import otel as sdk_otel
from firebreak_sdk import tracer as sdk_tracer

from agents import gate as server_gate
from agents import gate_server
from agents.keys.services import api_key_create
from agents.models import FleetGate, GateState
from agents.signing import canonical, document_sign, public_key_text
from traces.ingest.parse import native as server_native
from traces.models import StepKind, StepStatus, Trace
from traces.selectors import payloads

AGENT = "refund-bot"

# The largest body the Tracer assembles from several spans: at most MAX_BATCH_BYTES of spans (a single span
# larger than that goes alone), a comma between two spans, and the {"spans":[...]} around them.
LARGEST_BATCH_BODY = (
    sdk_encode.MAX_BATCH_BYTES + (sdk_encode.MAX_SPANS_PER_BATCH - 1) + len(sdk_encode.encode_batch([]))
)
# --- batches -----------------------------------------------------------------------------------------------


def test_the_sdk_batches_as_many_spans_as_the_server_takes_per_request():
    assert sdk_encode.MAX_SPANS_PER_BATCH == settings.FIREBREAK_INGEST_MAX_SPANS


def test_the_sdks_largest_batch_is_under_the_servers_ingest_body_limit():
    assert settings.FIREBREAK_INGEST_MAX_BYTES >= LARGEST_BATCH_BODY


def test_the_server_takes_a_batch_the_sdk_may_send(make_agent):
    """Over Django's form limit (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MiB), under the one ingest limit: taken."""
    agent = make_agent(AGENT)
    _, key = api_key_create(agent=agent, scopes=["ingest"])
    spans = [
        sdk_encode.encode_span(
            {
                "trace_id": "a" * 32,
                "span_id": f"{i + 1:016x}",
                "name": "chat",
                "kind": "llm",
                "start_time": "2026-11-20T10:00:00+00:00",
                "agent": AGENT,
                "output": "x" * 800_000,
            }
        )
        for i in range(4)
    ]
    assert sum(map(len, spans)) <= sdk_encode.MAX_BATCH_BYTES  # the Tracer sends these four in one batch
    body = sdk_encode.encode_batch(spans)
    assert len(body) > 3 * 1024 * 1024
    response = Client().post(
        reverse("api-ingest"), data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 200, response.content[:200]


# --- spans -------------------------------------------------------------------------------------------------


def test_the_sdk_cuts_texts_at_the_servers_limits():
    # The server also limits "agent" (the slug, at most 63 characters): the SDK sends the slug it was given.
    assert set(server_native.TEXT_LIMITS) - set(sdk_encode.TEXT_LIMITS) == {"agent"}
    assert {k: v for k, v in server_native.TEXT_LIMITS.items() if k != "agent"} == sdk_encode.TEXT_LIMITS


def test_the_sdks_largest_single_span_fits_the_servers_body_limit():
    # A span over MAX_BATCH_BYTES goes alone, in {"spans":[...]}.
    assert sdk_encode.MAX_SPAN_BYTES + len(sdk_encode.encode_batch([])) <= settings.FIREBREAK_INGEST_MAX_BYTES


def test_a_span_too_large_for_one_request_is_cut_to_fit_and_says_so():
    fields = {"trace_id": "a" * 32, "span_id": "b" * 16, "name": "read", "start_time": "2026-11-20T10:00:00+00:00"}
    data = sdk_encode.encode_span({**fields, "input": "é" * 6_000_000, "output": "x" * 9_000_000})
    assert len(data) <= sdk_encode.MAX_SPAN_BYTES
    span = json.loads(data)
    assert span["attributes"]["firebreak.truncated"] == ["output"]
    assert len(span["input"]) == 6_000_000  # the longer one was cut, by as much as needed


def test_the_server_takes_a_10_mib_output_the_sdk_sends_and_keeps_it_whole(make_agent):
    agent = make_agent(AGENT)
    _, key = api_key_create(agent=agent, scopes=["ingest"])
    output = "".join(f"line {i}: the tool read this\n" for i in range(400_000))[: 10 * 1024 * 1024]
    span = sdk_encode.encode_span(
        {"trace_id": "a" * 32, "span_id": "b" * 16, "name": "read_file", "kind": "tool",
         "start_time": "2026-11-20T10:00:00+00:00", "agent": AGENT, "output": output}
    )  # fmt: skip
    assert len(span) > sdk_encode.MAX_BATCH_BYTES  # the Tracer sends it alone
    response = Client().post(
        reverse("api-ingest"),
        data=sdk_encode.encode_batch([span]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200, response.content[:200]
    trace = Trace.objects.get()
    assert payloads.step_value_get(trace=trace, span_id="b" * 16, field="output").text == output


def test_the_sdk_clamps_counts_and_costs_into_the_servers_range():
    assert sdk_encode.COUNT_MAX == server_native.COUNT_MAX
    assert 0 < sdk_encode.COST_MAX < server_native.COST_BOUND


def test_span_kinds_and_statuses_are_the_servers():
    assert sdk_encode.KINDS == set(StepKind.values) == server_native.KINDS
    assert sdk_encode.STATUSES == set(StepStatus.values) == server_native.STATUSES


def test_every_span_the_tracer_sends_passes_the_servers_parser():
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        n = len(json.loads(request.content)["spans"])
        return httpx.Response(200, json={"received": n, "stored": n, "duplicates": 0, "traces": 1})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    tracer = Tracer(AGENT, url="http://firebreak.test", api_key="fbk_test", http_client=client)
    try:
        with tracer.run(
            "refund run", session_id="s-1", user_id="u-1", input_class="refund", input="where is my refund?",
            prompt_version="p7", model_version="m3", attributes={"tenant": "acme"},
        ) as run:  # fmt: skip
            run.llm(model="gpt-4o-mini", input="x" * 1_200_000, output="ok", tokens_in=2**40, tokens_out=-5,
                    cost=float("nan"), finish_reason="tool_calls" * 20, duration=0.2)  # fmt: skip
            run.tool("lookup_order", {"order_id": 42, "at": object()}, output={"status": "shipped"})
            with run.step("retrieval", name="n" * 600, agent_name="researcher", input={"q": 1}):
                pass
            run.set_error(AgentKilled(AGENT, reason="loop"))
        assert tracer.flush(timeout=10)
    finally:
        tracer.close()
        client.close()
    assert tracer.sent == 4 and tracer.failed == tracer.dropped == 0
    spans = [span for request in requests for span in json.loads(request.content)["spans"]]
    assert {request.url.path for request in requests} == {reverse("api-ingest")}
    assert set().union(*spans) <= server_native.FIELDS
    parsed = server_native.parse_native({"spans": spans}, max_spans=settings.FIREBREAK_INGEST_MAX_SPANS)
    assert [s.kind for s in parsed] == ["llm", "tool", "retrieval", "agent"]
    assert parsed[-1].trace_status == "killed"


# --- endpoints ---------------------------------------------------------------------------------------------


def test_the_sdk_calls_the_servers_endpoints():
    assert reverse("api-ingest") == sdk_tracer.INGEST_PATH
    assert reverse("otlp-traces") == sdk_otel.OTLP_TRACES_PATH
    assert sdk_documents.GATE_PATH.format(slug=AGENT) == reverse("api-gate", kwargs={"slug": AGENT})
    # The stream is served by the gate server (agents/gate_server.py), on the gate's path.
    assert sdk_documents.GATE_STREAM_PATH.format(slug=AGENT) == reverse("api-gate", kwargs={"slug": AGENT}) + "/stream"
    assert gate_server.PATH.match(sdk_documents.GATE_STREAM_PATH.format(slug=AGENT))["stream"]


# --- the gate ----------------------------------------------------------------------------------------------


def test_the_sdk_reads_the_gate_where_the_server_writes_it():
    assert sdk_documents.GATE_KEY == server_gate.KEY
    assert sdk_documents.GATE_CHANNEL == server_gate.CHANNEL
    assert sdk_documents.GATE_KEY.format(slug=AGENT) == server_gate.KEY.format(slug=AGENT) == f"firebreak:gate:{AGENT}"
    assert sdk_documents.GATE_CHANNEL.format(slug=AGENT) == f"firebreak:gate-events:{AGENT}"
    # The SDK learns of a fleet stop from its own document (fleet_stopped), never from the fleet key, which no
    # agent's key or channel can name.
    agent_keys = (sdk_documents.GATE_KEY.format(slug=""), sdk_documents.GATE_CHANNEL.format(slug=""))
    assert not server_gate.FLEET_KEY.startswith(agent_keys)


def test_the_gate_document_has_every_field_the_sdk_reads(make_agent):
    agent = make_agent(AGENT, session_cost_cap=5, session_step_cap=40)
    doc = document_sign(server_gate.gate_document(agent, FleetGate.load()))
    assert set(doc) >= sdk_documents.DOCUMENT_FIELDS
    assert set(sdk_documents.BUDGET_FIELDS) <= set(doc["budget"])
    assert set(GateState.values) == sdk_documents.STATES
    key = sdk_documents.load_public_key(public_key_text())
    assert sdk_documents.parse_document(json.dumps(doc), AGENT, public_key=key, max_age=60) == doc


def test_what_the_server_signs_the_sdk_verifies_and_anything_changed_it_refuses(make_agent):
    """Both sides agree on the canonical form (non-ASCII text, money as numbers, nested budget)."""
    agent = make_agent(AGENT, session_cost_cap=Decimal("5.25"))
    agent.state_reason = "Schleife bei Erstattungen — “refund” loop ✋"
    raw = json.dumps(document_sign(server_gate.gate_document(agent, FleetGate.load())), ensure_ascii=False)
    key = sdk_documents.load_public_key(public_key_text())
    assert sdk_documents.canonical(json.loads(raw)) == canonical(json.loads(raw))
    assert sdk_documents.parse_document(raw, AGENT, public_key=key, max_age=60)["reason"] == agent.state_reason
    tampered = json.loads(raw) | {"state": "active", "version": 10**12}
    with pytest.raises(ValueError, match="signature does not verify"):
        sdk_documents.parse_document(json.dumps(tampered), AGENT, public_key=key, max_age=60)


def test_the_sdk_gate_reads_no_document_field_it_does_not_declare():
    """Every ``doc["x"]`` / ``doc.get("x")`` in the SDK's gate and documents names a field of DOCUMENT_FIELDS."""
    read = set()
    source = inspect.getsource(sdk_gate) + "\n" + inspect.getsource(sdk_documents)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            target, key = node.func.value, node.args[0] if node.args else None
        else:
            continue
        names_doc = (isinstance(target, ast.Name) and target.id == "doc") or (
            isinstance(target, ast.Attribute) and target.attr == "doc"
        )
        if names_doc and isinstance(key, ast.Constant) and isinstance(key.value, str):
            read.add(key.value)
    assert {"agent", "state", "version", "fleet_stopped"} <= read  # the scan still finds the reads
    assert read <= sdk_documents.DOCUMENT_FIELDS
