"""POST /api/v1/ingest: the native batch, its errors, and that bad input writes nothing."""

import json

import pytest
from django.test import Client

from agents.keys.services import api_key_create
from traces.models import Step, Trace

URL = "/api/v1/ingest"


def span(**over):
    base = {
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "name": "invoke_agent support",
        "start_time": "2026-11-20T10:00:00Z",
        "end_time": "2026-11-20T10:00:02Z",
        "kind": "agent",
        "input": "where is my order?",
    }
    base.update(over)
    return base


def batch(*spans):
    return {"spans": list(spans) or [span()]}


@pytest.fixture
def agent(make_agent):
    return make_agent("support")


@pytest.fixture
def agent_key(agent):
    return api_key_create(agent=agent, scopes=["ingest", "gate"])[1]


def post(body, key=None, content_type="application/json"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return Client().post(URL, data=data, content_type=content_type, **headers)


def nothing_written():
    return not Trace.objects.exists() and not Step.objects.exists()


def test_agent_key_sends_a_batch_and_it_is_stored(agent, agent_key):
    tool = span(
        span_id="c" * 16,
        parent_span_id="b" * 16,
        kind="tool",
        name="execute_tool lookup_order",
        tool_name="lookup_order",
        tool_arguments={"order": 42},
        output='{"status": "shipped"}',
    )
    llm = span(
        span_id="d" * 16,
        parent_span_id="b" * 16,
        kind="llm",
        name="chat",
        model="gpt-4.1",
        tokens_in=500,
        tokens_out=100,
        cost="0.0125",
        finish_reason="stop",
    )
    response = post(batch(span(), tool, llm), agent_key)
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 3, "stored": 3, "duplicates": 0, "traces": 1}
    trace = Trace.objects.get(trace_id="a" * 32)
    assert trace.agent == agent
    assert trace.status == "ok"
    assert trace.root_input == "where is my order?"
    assert (trace.step_count, trace.tool_call_count, trace.tokens_in, trace.tokens_out) == (3, 1, 500, 100)
    assert str(trace.cost) == "0.012500"
    assert trace.model_version == "gpt-4.1"


def test_a_duplicate_batch_stores_nothing_new(agent, agent_key):
    body = batch(span(), span(span_id="c" * 16, parent_span_id="b" * 16, tokens_in=10))
    assert post(body, agent_key).json()["stored"] == 2
    again = post(body, agent_key).json()
    assert again == {"received": 2, "stored": 0, "duplicates": 2, "traces": 1}
    trace = Trace.objects.get()
    assert trace.step_count == 2
    assert trace.tokens_in == 10


def test_a_span_repeated_inside_one_batch_is_stored_once(agent, agent_key):
    response = post(batch(span(), span()), agent_key)
    assert response.json()["stored"] == 1
    assert Step.objects.count() == 1


def test_json_text_holding_a_backslash_before_u0000_is_stored_as_sent(agent, agent_key):
    # Text such as a regex or a C string literal: "\\u0000" is a backslash and five characters, not a NUL.
    text = "match \\u0000 or \\\\u0000z"
    tool = span(kind="tool", tool_name="grep", tool_arguments={"pattern": text}, attributes={"code": [text]})
    assert post(batch(tool), agent_key).status_code == 200
    step = Step.objects.get()
    assert step.tool_arguments == {"pattern": text}
    assert step.attributes["code"] == [text]


def test_trace_is_running_until_its_root_span_arrives(agent, agent_key):
    child = span(span_id="c" * 16, parent_span_id="b" * 16, kind="llm")
    post(batch(child), agent_key)
    assert Trace.objects.get().status == "running"
    post(batch(span(status="error", error_message="boom")), agent_key)
    trace = Trace.objects.get()
    assert trace.status == "error"
    assert trace.ended_at is not None


def test_tool_arguments_are_redacted_before_storage(agent, agent_key):
    args = {
        "user": "ann",
        "password": "hunter2",
        "X-Api-Key": "sk-live-123",
        "nested": {"access_token": "t0k", "max_tokens": 200},
        "note": "card 4111 1111 1111 1111, ssn 123-45-6789, order 1234",
    }
    post(batch(span(kind="tool", tool_name="crm_update", tool_arguments=args)), agent_key)
    stored = Step.objects.get().tool_arguments
    for value in (stored["password"], stored["X-Api-Key"], stored["nested"]["access_token"]):
        assert value.startswith("[REDACTED:key:")
    assert stored["nested"]["max_tokens"] == 200
    assert stored["user"] == "ann"
    assert "4111" not in stored["note"] and "123-45-6789" not in stored["note"]
    assert "order 1234" in stored["note"]


def test_equal_tool_calls_share_an_action_hash_whatever_the_key_order(agent, agent_key):
    a = span(span_id="1" * 16, kind="tool", tool_name="search", tool_arguments={"q": "x", "page": 1})
    b = span(span_id="2" * 16, kind="tool", tool_name="search", tool_arguments={"page": 1, "q": "x"})
    c = span(span_id="3" * 16, kind="tool", tool_name="search", tool_arguments={"page": 2, "q": "x"})
    post(batch(a, b, c), agent_key)
    hashes = dict(Step.objects.values_list("span_id", "action_hash"))
    assert hashes["1" * 16] == hashes["2" * 16] != hashes["3" * 16]
    assert len(hashes["1" * 16]) == 16


def test_responder_session_may_ingest_for_a_named_agent(agent, responder):
    c = Client()
    c.force_login(responder)
    response = c.post(URL, data=json.dumps(batch(span(agent="support"))), content_type="application/json")
    assert response.status_code == 200, response.content
    assert Trace.objects.get().agent == agent


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        ({"spans": []}, 400, "the batch is empty"),
        ({"nope": 1}, 400, '{"spans": [...]}'),
        (batch(span(trace_id="xyz")), 400, "spans[0].trace_id"),
        (batch(span(), span(span_id="c" * 16, start_time="yesterday")), 400, "spans[1].start_time"),
        (batch(span(end_time="2026-11-20T09:00:00Z")), 400, "spans[0].end_time: before start_time"),
        (batch(span(kind="banana")), 400, "spans[0].kind"),
        (batch(span(kind=["llm"])), 400, "spans[0].kind"),
        (batch(span(status={"code": "ok"})), 400, "spans[0].status"),
        (batch(span(trace_status=["killed"])), 400, "spans[0].trace_status"),
        (batch(span(tokens_in=-5)), 400, "spans[0].tokens_in"),
        (batch(span(cost="lots")), 400, "spans[0].cost"),
        (batch(span(tool_arguments="rm -rf")), 400, "spans[0].tool_arguments"),
        (batch(span(surprise=True)), 400, "unknown field(s) surprise"),
        (batch(span(agent="someone-else")), 403, "cannot send spans for 'someone-else'"),
    ],
)
def test_bad_batches_get_a_clear_error_and_write_nothing(agent, agent_key, body, status, message):
    # The first span of several bad batches is valid: validation covers the whole batch before writing.
    response = post(body, agent_key)
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    assert nothing_written()


def test_wrong_content_type_is_415(agent, agent_key):
    response = post("spans", agent_key, content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert nothing_written()


def test_body_over_the_limit_is_413(agent, agent_key, settings):
    settings.FIREBREAK_INGEST_MAX_BYTES = 200
    response = post(batch(span(output="x" * 500)), agent_key)
    assert response.status_code == 413
    assert nothing_written()


def test_too_many_spans_is_413(agent, agent_key, settings):
    settings.FIREBREAK_INGEST_MAX_SPANS = 1
    response = post(batch(span(), span(span_id="c" * 16)), agent_key)
    assert response.status_code == 413
    assert nothing_written()


def test_missing_or_unknown_key_is_401(agent):
    assert post(batch()).status_code == 401
    response = post(batch(), "fbk_000000000000_nope")
    assert response.status_code == 401
    assert "unknown or revoked" in response.json()["error"]
    assert nothing_written()


def test_gate_only_key_cannot_send_spans(agent):
    key = api_key_create(agent=agent, scopes=["gate"])[1]
    response = post(batch(), key)
    assert response.status_code == 403
    assert nothing_written()


def test_viewer_cannot_send_spans(agent, viewer):
    c = Client()
    c.force_login(viewer)
    response = c.post(URL, data=json.dumps(batch(span(agent="support"))), content_type="application/json")
    assert response.status_code == 403
    assert nothing_written()


def test_unknown_agent_from_a_person_is_400(agent, responder):
    c = Client()
    c.force_login(responder)
    response = c.post(URL, data=json.dumps(batch(span(agent="ghost"))), content_type="application/json")
    assert response.status_code == 400
    assert "unknown agent(s): ghost" in response.json()["error"]
    assert nothing_written()
