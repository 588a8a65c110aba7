"""Large values: any value over 64 KiB is taken (up to the body limit), stored compressed apart from the step
row, and served back whole by the viewer."""

import json
import zlib

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from agents.keys.services import api_key_create
from traces.ingest.payloads import APART_BYTES, APART_KEY, PREVIEW_CHARS, payloads_split
from traces.ingest.spans import Span
from traces.models import Step, StepPayload, Trace
from traces.tests.conftest import T0
from traces.tests.otel_helpers import protobuf, record
from traces.tests.test_ingest_api import batch, span

MIB = 1024 * 1024
NATIVE = "/api/v1/ingest"
OTLP = "/v1/traces"


@pytest.fixture
def key(make_agent):
    return api_key_create(agent=make_agent("support"), scopes=["ingest"])[1]


def big_text(n: int) -> str:
    # Text that compresses like real text does, not like one repeated character.
    words = ["refund", "order", "shipped", "customer", "policy", "warehouse", "invoice", "42", "€", "\n"]
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(i % 9 + 3)) for i in range(997)]
    block = " ".join(lines)
    return (block * (n // len(block) + 1))[:n]


def post(url, body, key, content_type="application/json"):
    return Client().post(url, data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {key}")


def step_row_bytes(step: Step) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_column_size(s.*) FROM traces_step s WHERE id = %s", [step.pk])
        return cur.fetchone()[0]


def value_url(step: Step, field: str, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"agent": step.trace.agent.slug, "field": field, **extra}.items())
    return f"{reverse('traces:step-value', args=[step.trace.trace_id, step.span_id])}?{query}"


def test_native_span_with_a_10_mib_output_is_taken_and_stored_apart(key, viewer_client):
    output = big_text(10 * MIB)
    response = post(NATIVE, json.dumps(batch(span(output=output))), key)
    assert response.status_code == 200, response.content[:300]
    step = Step.objects.get()
    assert step.output == output[:PREVIEW_CHARS]
    assert step.attributes[APART_KEY] == {"output": len(output.encode())}
    assert step_row_bytes(step) < 16 * 1024
    assert len(Trace.objects.get().root_output) == PREVIEW_CHARS  # the trace row holds the preview too
    payload = StepPayload.objects.get()
    assert (payload.field, payload.size, payload.content_type) == ("output", len(output.encode()), "text/plain")
    assert len(payload.data) < len(output) // 4
    assert zlib.decompress(bytes(payload.data)).decode() == output

    download = viewer_client.get(value_url(step, "output", download="1"))
    assert download.status_code == 200
    assert download["Content-Type"] == "text/plain; charset=utf-8"
    assert download["Content-Disposition"].startswith("attachment;")
    assert download.content.decode() == output  # byte for byte


def test_otlp_span_with_a_10_mib_attribute_is_taken_and_stored_apart(key, viewer_client):
    document = big_text(10 * MIB)

    def build(tracer):
        with tracer.start_as_current_span("retrieve policy") as s:
            s.set_attribute("openinference.span.kind", "RETRIEVER")
            s.set_attribute("retrieval.document", document)
            s.set_attribute("input.value", "refund policy")

    response = post(OTLP, protobuf(record(build, service_name="support")), key, "application/x-protobuf")
    assert response.status_code == 200, response.content[:300]
    step = Step.objects.get()
    assert step.input == "refund policy"
    assert step.attributes["retrieval.document"] == document[:PREVIEW_CHARS]
    assert step.attributes[APART_KEY] == {"attributes.retrieval.document": len(document.encode())}
    assert step_row_bytes(step) < 16 * 1024
    page = viewer_client.get(value_url(step, "attributes.retrieval.document", download="1"))
    assert page.status_code == 200
    assert page.content.decode() == document


def test_large_tool_arguments_keep_their_action_hash_and_a_preview(key):
    args = {"path": "/tmp/export.csv", "content": big_text(200 * 1024)}
    small = span(span_id="c" * 16, parent_span_id="b" * 16, kind="tool", tool_name="write_file", tool_arguments=args)
    assert post(NATIVE, json.dumps(batch(span(), small)), key).status_code == 200
    step = Step.objects.get(span_id="c" * 16)
    assert set(step.tool_arguments) == {"firebreak.preview", APART_KEY}
    assert step.tool_arguments["firebreak.preview"].startswith('{"path":"/tmp/export.csv"')
    assert len(step.action_hash) == 16
    payload = StepPayload.objects.get(span_id="c" * 16)
    assert payload.content_type == "application/json"
    assert json.loads(zlib.decompress(bytes(payload.data))) == args


def test_a_span_sent_twice_stores_its_payload_once(key):
    body = json.dumps(batch(span(output=big_text(100 * 1024))))
    assert post(NATIVE, body, key).json()["stored"] == 1
    assert post(NATIVE, body, key).json()["duplicates"] == 1
    assert StepPayload.objects.count() == 1


def test_values_under_the_bound_stay_in_the_row():
    s = Span(trace_id="a" * 32, span_id="b" * 16, name="n", start=T0, output="x" * APART_BYTES)
    row, payloads = payloads_split(s)
    assert row is s and payloads == []


def test_a_sender_cannot_claim_values_are_stored_apart():
    s = Span(trace_id="a" * 32, span_id="b" * 16, name="n", start=T0, attributes={APART_KEY: {"output": 9}})
    row, payloads = payloads_split(s)
    assert APART_KEY not in row.attributes and payloads == []
    assert s.attributes == {APART_KEY: {"output": 9}}  # the span passed in is never changed


def test_the_viewer_shows_the_preview_escaped_and_fetches_the_whole_value_on_expand(key, viewer_client):
    hostile = "<script>alert(1)</script>" + big_text(300 * 1024) + "<img src=x onerror=alert(2)>"
    assert post(NATIVE, json.dumps(batch(span(output=hostile))), key).status_code == 200
    step = Step.objects.get()
    page = viewer_client.get(step.trace.get_absolute_url())
    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "stored apart" in html and "Show all (" in html
    assert value_url(step, "output").replace("&", "&amp;") in html
    fragment = viewer_client.get(value_url(step, "output"), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body  # the end of the value: all of it came back
    assert "download all" in body


def test_a_value_over_the_display_bound_is_shown_in_part_with_a_download(key, viewer_client, settings):
    output = big_text(1_200_000)
    assert post(NATIVE, json.dumps(batch(span(output=output))), key).status_code == 200
    step = Step.objects.get()
    body = viewer_client.get(value_url(step, "output")).content.decode()
    assert "showing the first 1,000,000 of 1,200,000 characters" in body
    assert "download=1" in body


def test_the_input_stored_apart_opens_whole_from_the_existing_input_control(key, viewer_client):
    text = big_text(100 * 1024)
    assert post(NATIVE, json.dumps(batch(span(input=text))), key).status_code == 200
    step = Step.objects.get()
    url = reverse("traces:step-text", args=[step.trace.trace_id, step.span_id, "input"]) + "?agent=support"
    response = viewer_client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert text[-500:] in response.content.decode()


def test_a_value_not_stored_apart_is_a_404(key, viewer_client):
    assert post(NATIVE, json.dumps(batch(span(output="short"))), key).status_code == 200
    step = Step.objects.get()
    assert viewer_client.get(value_url(step, "output")).status_code == 404
    assert viewer_client.get(value_url(step, "attributes.nope")).status_code == 404


def test_the_value_url_needs_a_login(key, client):
    assert post(NATIVE, json.dumps(batch(span(output=big_text(100 * 1024)))), key).status_code == 200
    step = Step.objects.get()
    response = client.get(value_url(step, "output", download="1"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_span_over_the_text_limit_is_still_a_clean_400_and_writes_nothing(key):
    response = post(NATIVE, json.dumps(batch(span(name="n" * 501, output=big_text(100 * 1024)))), key)
    assert response.status_code == 400
    assert "name" in response.json()["error"]
    assert not Step.objects.exists() and not StepPayload.objects.exists() and not Trace.objects.exists()


def test_a_body_over_the_limit_is_a_413_and_writes_nothing(key, settings):
    settings.FIREBREAK_INGEST_MAX_BYTES = 1 * MIB
    response = post(NATIVE, json.dumps(batch(span(output=big_text(2 * MIB)))), key)
    assert response.status_code == 413
    assert not StepPayload.objects.exists() and not Trace.objects.exists()


def test_the_trace_api_says_which_values_are_stored_apart(key, viewer_client):
    output = big_text(100 * 1024)
    assert post(NATIVE, json.dumps(batch(span(output=output))), key).status_code == 200
    body = viewer_client.get(f"/api/v1/traces/{'a' * 32}?agent=support").json()
    (step,) = body["steps"]
    assert step["stored_apart"] == {"output": len(output.encode())}
    assert step["output"] == output[:PREVIEW_CHARS]


def test_payload_rows_go_with_their_trace_even_when_it_is_deleted_with_sql(key):
    assert post(NATIVE, json.dumps(batch(span(output=big_text(100 * 1024)))), key).status_code == 200
    with connection.cursor() as cur:
        cur.execute("DELETE FROM traces_step")
        cur.execute("DELETE FROM traces_trace")
    assert not StepPayload.objects.exists()
