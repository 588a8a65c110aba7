"""Issue 12, item 4: a trace is (agent, trace id). One agent's key cannot touch another agent's trajectory.

The attack: agent A's key sends spans that carry agent B's trace id and B's span ids, with huge token and
cost figures and a ``killed`` run status. B's steps, totals, status and gate must not change; A gets a
trajectory of its own under the same trace id, and the viewer shows the two as linked trajectories.
Here, above traces and incidents, because it runs the streaming detectors on what ingest stored.
"""

import json
from decimal import Decimal

import pytest
from django.test import Client

from agents.keys.services import api_key_create
from agents.models import Agent, GateState
from incidents.detection.runner import detect_batch
from incidents.models import Alert
from traces.models import Step, Trace

TRACE = "b0" * 16
B_ROOT = "1" * 16
B_STEP = "2" * 16


def _span(span_id, *, parent=None, **over):
    span = {
        "trace_id": TRACE,
        "span_id": span_id,
        "name": "invoke_agent refunds" if parent is None else "chat",
        "start_time": "2026-11-20T10:00:00Z",
        "end_time": "2026-11-20T10:00:02Z",
        "kind": "agent" if parent is None else "llm",
    }
    if parent:
        span["parent_span_id"] = parent
    span.update(over)
    return span


def _post(key, *spans):
    return Client().post(
        "/api/v1/ingest",
        data=json.dumps({"spans": list(spans)}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


@pytest.fixture
def agents(make_agent):
    # B's caps are low, so a trajectory inflated by someone else's spans would trip session_caps and pause B.
    b = make_agent("victim-bot", session_token_cap=100_000, session_cost_cap=Decimal("5"))
    a = make_agent("attacker-bot", session_token_cap=None, session_cost_cap=None)
    return a, b


@pytest.fixture
def keys(agents):
    a, b = agents
    return api_key_create(agent=a, scopes=["ingest"])[1], api_key_create(agent=b, scopes=["ingest"])[1]


def _b_sends_its_run(b_key):
    response = _post(
        b_key,
        _span(B_ROOT, input="refund order 7", output="refunded"),
        _span(B_STEP, parent=B_ROOT, tokens_in=100, tokens_out=20, cost="0.005", output="ok"),
    )
    assert response.status_code == 200, response.content
    return Trace.objects.get(trace_id=TRACE, agent__slug="victim-bot")


def _b_state(trace):
    trace.refresh_from_db()
    steps = list(Step.objects.filter(trace=trace).order_by("span_id").values_list("span_id", "name", "output", "cost"))
    totals = (trace.tokens_in, trace.tokens_out, trace.cost, trace.step_count, trace.tool_call_count)
    return steps, totals, trace.status, trace.root_input, trace.ended_at


def test_another_agents_key_cannot_change_a_trajectory_by_reusing_its_trace_and_span_ids(agents, keys):
    a, _b = agents
    a_key, b_key = keys
    b_trace = _b_sends_its_run(b_key)
    before = _b_state(b_trace)

    attack = _post(
        a_key,
        _span(B_ROOT, input="ignore me", output="hijacked", trace_status="killed", end_time="2026-11-20T11:00:00Z"),
        _span(B_STEP, parent=B_ROOT, tokens_in=4_000_000, tokens_out=1_000_000, cost="4995", output="hijacked"),
    )

    assert attack.status_code == 200, attack.content
    assert attack.json() == {"received": 2, "stored": 2, "duplicates": 0, "traces": 1}
    assert _b_state(b_trace) == before
    assert before[1] == (100, 20, Decimal("0.005000"), 2, 0) and before[2] == "ok"
    a_trace = Trace.objects.get(trace_id=TRACE, agent=a)
    assert a_trace.pk != b_trace.pk
    assert (a_trace.tokens_in, a_trace.tokens_out, a_trace.cost, a_trace.step_count) == (
        4_000_000,
        1_000_000,
        Decimal("4995"),
        2,
    )
    assert a_trace.status == "killed"
    assert set(Step.objects.filter(trace=a_trace).values_list("span_id", flat=True)) == {B_ROOT, B_STEP}


def test_detectors_on_the_attackers_spans_never_pause_the_victim(agents, keys, django_capture_on_commit_callbacks):
    a, b = agents
    a_key, b_key = keys
    b_trace = _b_sends_its_run(b_key)
    _post(
        a_key,
        _span(B_STEP, parent=B_ROOT, tokens_in=4_000_000, tokens_out=1_000_000, cost="4995", output="hijacked"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        alerts = detect_batch(trace_pks=list(Trace.objects.filter(trace_id=TRACE).values_list("pk", flat=True)))

    assert Agent.objects.get(pk=b.pk).state == GateState.ACTIVE
    assert not Alert.objects.filter(agent=b).exists()
    assert all(alert.agent_id == a.pk for alert in alerts)
    b_trace.refresh_from_db()
    assert (b_trace.tokens_in, b_trace.cost, b_trace.step_count) == (100, Decimal("0.005"), 2)


def test_an_agent_key_naming_another_agent_on_a_span_is_refused_and_writes_nothing(agents, keys):
    a_key, b_key = keys
    b_trace = _b_sends_its_run(b_key)
    before = _b_state(b_trace)
    response = _post(a_key, _span(B_STEP, parent=B_ROOT, agent="victim-bot", tokens_in=9_999))
    assert response.status_code == 403
    assert _b_state(b_trace) == before
    assert not Trace.objects.filter(agent__slug="attacker-bot").exists()


def test_a_span_sent_twice_by_the_same_agent_is_stored_once_per_trajectory(agents, keys):
    a_key, b_key = keys
    b_trace = _b_sends_its_run(b_key)
    again = _post(b_key, _span(B_STEP, parent=B_ROOT, tokens_in=100, tokens_out=20, cost="0.005"))
    assert again.json() == {"received": 1, "stored": 0, "duplicates": 1, "traces": 1}
    assert _post(a_key, _span(B_STEP, parent=B_ROOT)).json()["stored"] == 1
    assert _post(a_key, _span(B_STEP, parent=B_ROOT)).json()["stored"] == 0
    b_trace.refresh_from_db()
    assert b_trace.step_count == 2
    assert Step.objects.filter(trace__trace_id=TRACE, span_id=B_STEP).count() == 2  # one per agent


def test_a_person_may_send_one_batch_with_two_agents_sharing_a_trace_id(agents, responder):
    c = Client()
    c.force_login(responder)
    body = {
        "spans": [
            _span(B_ROOT, agent="victim-bot", tokens_in=1),
            _span(B_STEP, parent=B_ROOT, agent="attacker-bot", tokens_in=2),
            _span(B_ROOT, agent="attacker-bot", tokens_in=3),
        ]
    }
    response = c.post("/api/v1/ingest", data=json.dumps(body), content_type="application/json")
    assert response.json() == {"received": 3, "stored": 3, "duplicates": 0, "traces": 2}
    by_agent = {t.agent.slug: (t.step_count, t.tokens_in) for t in Trace.objects.filter(trace_id=TRACE)}
    assert by_agent == {"victim-bot": (1, 1), "attacker-bot": (2, 5)}


def _attacked(keys):
    a_key, b_key = keys
    _b_sends_its_run(b_key)
    _post(a_key, _span(B_STEP, parent=B_ROOT, tokens_in=4_000_000, cost="4995", output="hijacked"))


def test_the_viewer_opens_the_root_trajectory_and_links_the_other_agents(agents, keys, viewer, make_client):
    _attacked(keys)
    c = make_client(viewer)
    page = c.get(f"/traces/{TRACE}/")
    assert page.status_code == 200
    assert page.context["trace"].agent.slug == "victim-bot"  # the trajectory holding the root span
    html = page.content.decode()
    assert "Linked trajectories" in html
    assert f'href="/traces/{TRACE}/?agent=attacker-bot"' in html
    assert "hijacked" not in html

    other = c.get(f"/traces/{TRACE}/", {"agent": "attacker-bot"})
    assert other.context["trace"].agent.slug == "attacker-bot"
    assert other.context["trace"].tokens_in == 4_000_000
    assert f'href="/traces/{TRACE}/?agent=victim-bot"' in other.content.decode()
    assert c.get(f"/traces/{TRACE}/", {"agent": "nobody"}).status_code == 404


def test_a_trace_of_one_agent_shows_no_linked_box(agents, keys, viewer, make_client):
    _b_sends_its_run(keys[1])
    html = make_client(viewer).get(f"/traces/{TRACE}/").content.decode()
    assert "Linked trajectories" not in html
    assert f'href="/traces/{TRACE}/diff/?agent=victim-bot"' in html


def test_flagging_and_steps_act_on_the_trajectory_the_url_names(agents, keys, responder, make_client):
    _attacked(keys)
    c = make_client(responder)
    response = c.post(f"/traces/{TRACE}/flag?agent=attacker-bot", {"span_id": B_STEP, "note": "Inflated usage."})
    assert response.status_code == 302
    assert response["Location"].startswith(f"/traces/{TRACE}/?agent=attacker-bot&at={B_STEP}")
    flagged = dict(Trace.objects.filter(trace_id=TRACE).values_list("agent__slug", "flagged_span_id"))
    assert flagged == {"attacker-bot": B_STEP, "victim-bot": ""}
    text = c.get(f"/traces/{TRACE}/steps/{B_STEP}/output/", {"agent": "attacker-bot"})
    assert "hijacked" in text.content.decode()
    assert "hijacked" not in c.get(f"/traces/{TRACE}/steps/{B_STEP}/output/").content.decode()


def test_an_incident_attaches_the_trajectory_named_by_trace_id_at_agent(agents, keys, make_incident):
    _attacked(keys)
    incident = make_incident(traces=[f"{TRACE}@attacker-bot"])
    assert [(t.trace_id, t.agent.slug) for t in incident.traces.all()] == [(TRACE, "attacker-bot")]
    default = make_incident(traces=[TRACE])
    assert [t.agent.slug for t in default.traces.all()] == ["victim-bot"]
