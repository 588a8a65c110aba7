"""Redaction everywhere: nothing of a secret an agent sends reaches the database or the logs, on both doors."""

import json
import logging

import pytest
from django.test import Client

from agents.keys.services import api_key_create
from traces.models import Step, Trace
from traces.tests.otel_helpers import otlp_json, protobuf, record

CARD = "4111 1111 1111 1111"
SECRETS = [
    "hunter2-db-pass",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUv123",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2" * 9,
    "xoxb-123456789012-abcdefghijkl",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "url-pass-42",
    "qs-token-777",
    CARD,
    "123-45-6789",
]
TEXT = (
    f"Bearer {SECRETS[1]} aws {SECRETS[2]} gh {SECRETS[3]} slack {SECRETS[4]} jwt {SECRETS[5]} "
    f"db postgres://app:{SECRETS[6]}@db/x url https://x.io/?access_token={SECRETS[7]} card {CARD} ssn {SECRETS[9]}"
)


@pytest.fixture
def agent(make_agent):
    return make_agent("secretive")


@pytest.fixture
def agent_key(agent):
    return api_key_create(agent=agent, scopes=["ingest", "gate"])[1]


def stored_text() -> str:
    """Every column of every Trace and Step row, as text."""
    rows = list(Trace.objects.values()) + list(Step.objects.values())
    return json.dumps(rows, default=str, ensure_ascii=False)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret
    # No two groups of the card either; not "4111" alone: stored times and ids may hold it (…:12.041115).
    assert "4111 1111" not in text and "1111 1111" not in text and "41111111" not in text


def native_span(span_id: str, **over):
    base = {
        "trace_id": "a" * 32,
        "span_id": span_id,
        "name": f"tool call {SECRETS[2]}",
        "start_time": "2026-11-20T10:00:00Z",
        "end_time": "2026-11-20T10:00:01Z",
        "kind": "tool",
        "tool_name": "crm_update",
        "tool_arguments": {"password": SECRETS[0], "note": TEXT, "nested": [{"api_key": SECRETS[1]}]},
        "input": TEXT,
        "output": TEXT,
        "error_message": TEXT,
        "session_id": f"s {SECRETS[9]}",
        "user_id": f"u {CARD}",
        "attributes": {"http.url": f"https://x.io/?token={SECRETS[7]}", "Authorization": f"Bearer {SECRETS[1]}"},
    }
    base.update(over)
    return base


def post_native(body, key):
    return Client().post(
        "/api/v1/ingest", data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


def test_native_ingest_stores_nothing_of_any_secret_and_logs_none(agent_key, caplog):
    caplog.set_level(logging.DEBUG)
    root = native_span("b" * 16, kind="agent", tool_name="", tool_arguments=None)
    child = native_span("c" * 16, parent_span_id="b" * 16)
    response = post_native({"spans": [root, child]}, agent_key)
    assert response.status_code == 200, response.content
    assert Step.objects.count() == 2
    text = stored_text()
    assert_no_secret(text)
    assert "[REDACTED:card:" in text and "[REDACTED:key:" in text
    assert_no_secret(caplog.text)


def otel_run(tracer):
    with tracer.start_as_current_span(f"invoke_agent {SECRETS[2]}") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "content": TEXT}]))
        root.set_attribute("user.id", f"u {CARD}")
        root.set_attribute("db.password", SECRETS[0])
        with tracer.start_as_current_span("execute_tool crm_update") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "crm_update")
            tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"password": SECRETS[0], "note": TEXT}))
            tool.set_attribute("gen_ai.tool.call.result", TEXT)
            tool.set_attribute("http.url", f"https://x.io/?access_token={SECRETS[7]}")


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_otlp_ingest_stores_nothing_of_any_secret_and_logs_none(agent_key, encoding, caplog):
    caplog.set_level(logging.DEBUG)
    spans = record(otel_run, service_name="secretive")
    if encoding == "protobuf":
        body, content_type = protobuf(spans), "application/x-protobuf"
    else:
        body, content_type = otlp_json(spans), "application/json"
    response = Client().post(
        "/v1/traces", data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {agent_key}"
    )
    assert response.status_code == 200, response.content
    assert Step.objects.count() == 2
    text = stored_text()
    assert_no_secret(text)
    assert "[REDACTED:" in text
    assert_no_secret(caplog.text)


def test_two_tool_calls_differing_only_in_a_secret_keep_different_action_hashes(agent_key):
    a = native_span("1" * 16, tool_arguments={"q": "x", "password": "first-secret"})
    b = native_span("2" * 16, tool_arguments={"q": "x", "password": "second-secret"})
    c = native_span("3" * 16, tool_arguments={"q": "x", "password": "first-secret"})
    d = native_span("4" * 16, tool_arguments={"q": f"card {CARD}"})
    e = native_span("5" * 16, tool_arguments={"q": "card 5500 0000 0000 0004"})
    assert post_native({"spans": [a, b, c, d, e]}, agent_key).status_code == 200
    hashes = dict(Step.objects.values_list("span_id", "action_hash"))
    assert hashes["1" * 16] != hashes["2" * 16]
    assert hashes["1" * 16] == hashes["3" * 16]
    assert hashes["4" * 16] != hashes["5" * 16]


def test_a_nul_in_span_content_is_kept_as_a_replacement_character(agent_key):
    span = native_span("b" * 16, input="a\x00b", tool_arguments={"k\x00": "v\x00"}, attributes={"x": "y\x00"})
    assert post_native({"spans": [span]}, agent_key).status_code == 200
    step = Step.objects.get()
    assert step.input == "a\ufffdb"
    assert step.tool_arguments == {"k\ufffd": "v\ufffd"}
    assert step.attributes["x"] == "y\ufffd"
