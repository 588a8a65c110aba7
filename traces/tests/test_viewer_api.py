"""GET /api/v1/traces (the trace list's filters, keyset pages) and GET /api/v1/traces/<trace_id> (one
trajectory, its steps a page at a time)."""

from datetime import timedelta

import pytest

from agents.keys.services import api_key_create
from traces.tests.conftest import T0

pytestmark = pytest.mark.django_db

URL = "/api/v1/traces"
XSS = "<img src=x onerror=alert(1)>"


def test_lists_traces_newest_first_with_the_list_s_filters(client, viewer, trace_of, make_agent, make_spans, ingest):
    early = trace_of([{"kind": "tool", "tool": "search"}], start=T0, user_id="u-1", session_id="s-1")
    late = trace_of(
        [{"kind": "tool", "tool": "refund"}], start=T0 + timedelta(minutes=5), user_id="u-2", model_version="m2"
    )
    make_agent("other-bot")
    ingest(make_spans(agent="other-bot", trace_id="f" * 32, steps=[{"kind": "llm"}], start=T0))
    _, raw = api_key_create(user=viewer, scopes=["api"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    def ids(**query):
        response = client.get(URL, query, **auth)
        assert response.status_code == 200, response.content
        return [t["trace_id"] for t in response.json()["results"]]

    assert ids(agent="support-bot") == [late.trace_id, early.trace_id]
    assert ids(tool="refund") == [late.trace_id]
    assert ids(user_id="u-1") == [early.trace_id]
    assert ids(session_id="s-1") == [early.trace_id]
    assert ids(model_version="m2") == [late.trace_id]
    assert ids(agent="support-bot", flagged="yes") == []


def test_trace_pages_walk_each_trace_once(client, viewer, trace_of):
    made = [trace_of([{"kind": "llm"}], start=T0 + timedelta(seconds=i)).trace_id for i in range(5)]
    client.force_login(viewer)
    seen, cursor = [], ""
    while True:
        body = client.get(URL, {"limit": 2, "cursor": cursor} if cursor else {"limit": 2}).json()
        seen += [t["trace_id"] for t in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"agent": "ghost"}, "agent"),
        ({"status": "weird"}, "status"),
        ({"window": "1y"}, "window"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 500}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_bad_filters_are_400_naming_them(client, viewer, agent, query, field):
    client.force_login(viewer)
    response = client.get(URL, query)
    assert response.status_code == 400 and field in response.json()["detail"]


def test_reads_a_trajectory_with_its_steps_in_pages(client, viewer, trace_of):
    steps = [{"kind": "tool", "tool": "search", "args": {"q": i}, "output": f"result {i}"} for i in range(5)]
    steps.append({"kind": "llm", "output": XSS})
    trace = trace_of(steps)
    client.force_login(viewer)
    body = client.get(f"{URL}/{trace.trace_id}", {"limit": 4}).json()
    assert body["trace_id"] == trace.trace_id and body["agent"] == "support-bot"
    first = body["steps"]
    assert len(first) == 4 and body["next_cursor"]
    rest = client.get(f"{URL}/{trace.trace_id}", {"limit": 4, "cursor": body["next_cursor"]}).json()
    assert rest["next_cursor"] is None
    spans = [s["span_id"] for s in first + rest["steps"]]
    assert len(spans) == len(set(spans)) == trace.step_count
    assert rest["steps"][-1]["output"] == XSS  # stored text, as it came: the client escapes it
    assert any(s["tool_name"] == "search" and s["tool_arguments"] == {"q": 0} for s in first)


def test_agent_picks_the_trajectory_and_unknown_is_404(client, viewer, trace_of):
    trace = trace_of([{"kind": "llm"}])
    client.force_login(viewer)
    assert client.get(f"{URL}/{trace.trace_id}", {"agent": "support-bot"}).status_code == 200
    assert client.get(f"{URL}/{trace.trace_id}", {"agent": "other-bot"}).status_code == 404
    assert client.get(f"{URL}/{'e' * 32}").status_code == 404
    bad = client.get(f"{URL}/{trace.trace_id}", {"cursor": "nope"})
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]


def test_needs_a_person(client, trace_of, agent):
    trace_of([{"kind": "llm"}])
    _, raw = api_key_create(agent=agent, scopes=["ingest", "gate"])
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403
    assert client.get(URL).status_code in (401, 403)


def test_a_responder_flags_a_step_and_bad_input_writes_nothing(client, responder, viewer, trace_of):
    trace = trace_of([{"kind": "tool", "tool": "refund"}, {"kind": "llm"}])
    span = trace.steps.exclude(parent_span_id="").first().span_id
    url = f"{URL}/{trace.trace_id}/flag"
    client.force_login(viewer)
    assert client.post(url, {"span_id": span, "note": "x"}, content_type="application/json").status_code == 403
    client.force_login(responder)
    for body, field in [
        ({"note": "no step"}, "span_id"),
        ({"span_id": "f" * 16, "note": "x"}, "span_id"),
        ({"span_id": span}, "note"),
    ]:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400 and field in response.json()["detail"], body
    trace.refresh_from_db()
    assert trace.flagged_span_id == ""
    response = client.post(url, {"span_id": span, "note": "Refunded without asking."}, content_type="application/json")
    assert response.status_code == 200 and response.json()["flagged_span_id"] == span
    trace.refresh_from_db()
    assert trace.flag_note == "Refunded without asking." and trace.flagged_by == responder.username
