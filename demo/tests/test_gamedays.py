"""Gamedays: starting one over the API (and what bad input writes: nothing), and the clock each real
action of the runbook stamps on it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, ApiKey
from agents.services import agent_budget_freeze, agent_kill, agent_pause
from core import clock
from core.actors import Actor
from demo.gamedays.models import Gameday
from demo.gamedays.services import gameday_start
from evals.services import eval_case_capture
from incidents.alerts.services import alert_raise
from incidents.blast_radius.services import blast_radius_record
from incidents.blast_radius.signature import BlastSignature
from incidents.integrations.pagerduty.sending import alert_trigger, incident_trigger
from incidents.integrations.slack.messages import alert_message, incident_summary
from incidents.notifications.messages import alert_notice, gate_notice, incident_notice
from incidents.postmortems.metrics import incidents_per_failure_class, time_to_contain_resolve
from traces.models import Trace
from traces.services import trace_flag

pytestmark = pytest.mark.django_db
MARKS = ["detected", "contained", "budget_frozen", "step_flagged", "blast_radius", "eval_captured"]
T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def _post(client, body):
    return client.post("/api/v1/gamedays", body, content_type="application/json")


def test_a_tabletop_without_an_agent_registers_a_drill_agent_and_injects_nothing(make_client, responder):
    client = make_client(responder)
    r = _post(client, {"scenario": "runaway-loop", "mode": "tabletop"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["agent"] == "drill-runaway-loop-1"
    assert body["scenario"] == "runaway-loop" and body["mode"] == "tabletop" and body["status"] == "running"
    assert body["timings"] == dict.fromkeys(MARKS)
    assert not ApiKey.objects.filter(agent__slug="drill-runaway-loop-1").exists()  # no process, no key
    second = _post(client, {"scenario": "runaway-loop", "mode": "tabletop"}).json()
    assert second["agent"] == "drill-runaway-loop-2"

    got = client.get(f"/api/v1/gamedays/{body['id']}")
    assert got.status_code == 200
    assert got.json()["timings"]["contained"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "scenario"),
        ({"scenario": "meteor-strike"}, "scenario"),
        ({"scenario": "runaway-loop", "mode": "rehearsal"}, "mode"),
        ({"scenario": "runaway-loop", "agent": "no-such-agent"}, "agent"),
        ({"scenario": "runaway-loop", "agent": "not a slug!"}, "agent"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(make_client, responder, body, field):
    agents = Agent.objects.count()
    r = _post(make_client(responder), body)
    assert r.status_code == 400
    assert field in r.json()["detail"]
    assert Gameday.objects.count() == 0 and Agent.objects.count() == agents


def test_viewers_read_but_do_not_start(make_client, viewer, responder):
    client = make_client(viewer)
    assert _post(client, {"scenario": "runaway-loop", "mode": "tabletop"}).status_code == 403
    assert Gameday.objects.count() == 0
    assert client.get("/api/v1/gamedays/999").status_code == 404


def test_a_second_gameday_on_a_running_agent_is_a_conflict(make_client, responder, make_agent):
    make_agent("refund-bot")
    client = make_client(responder)
    assert _post(client, {"scenario": "tool-misuse", "agent": "refund-bot", "mode": "tabletop"}).status_code == 201
    r = _post(client, {"scenario": "tool-misuse", "agent": "refund-bot", "mode": "tabletop"})
    assert r.status_code == 409 and "refund-bot" in r.json()["error"]
    assert Gameday.objects.count() == 1


def test_each_runbook_action_stamps_its_mark_in_seconds_from_the_start(
    make_agent, make_spans, ingest, make_incident, responder, django_capture_on_commit_callbacks
):
    agent = make_agent("refund-bot")
    other = make_agent("other-bot")
    me = Actor.person(responder)
    with clock.at(T0):
        gameday = gameday_start(scenario="runaway-loop", agent=agent, mode="tabletop", actor=me)
    ingest(
        make_spans(
            agent="refund-bot",
            trace_id="c" * 32,
            root_input="Where is A-1001?",
            steps=[{"kind": "tool", "tool": "lookup_order"}],
        )
    )
    trace = Trace.objects.get(trace_id="c" * 32)
    span_id = (
        trace.steps.exclude(parent_span_id="").values_list("span_id", flat=True).first() or trace.steps.first().span_id
    )

    def at(seconds, action):
        with clock.at(T0 + timedelta(seconds=seconds)), django_capture_on_commit_callbacks(execute=True):
            action()
        gameday.refresh_from_db()
        return gameday.timings()

    assert at(5, lambda: agent_kill(agent=other, actor=me))["contained"] is None  # another agent: not this drill
    timings = at(
        12, lambda: alert_raise(detector="action_repeat", agent=agent, fingerprint="gd-1", title="loop", trace=trace)
    )
    assert timings["detected"] == 12.0 and timings["contained"] is None
    assert at(30, lambda: agent_pause(agent=agent, actor=me))["contained"] == 30.0
    assert at(40, lambda: agent_kill(agent=agent, actor=me))["contained"] == 30.0  # the first containment counts
    assert at(95, lambda: agent_budget_freeze(agent=agent, actor=me))["budget_frozen"] == 95.0
    assert (
        at(150, lambda: trace_flag(trace=trace, span_id=span_id, note="looped here", actor=me))["step_flagged"] == 150.0
    )
    with clock.at(T0 + timedelta(seconds=200)):
        incident = make_incident(agents=[agent])
    assert (
        at(
            230,
            lambda: blast_radius_record(
                incident=incident,
                signature=BlastSignature(tool="lookup_order"),
                since=T0,
                until=T0 + timedelta(hours=1),
                actor=me,
            ),
        )["blast_radius"]
        == 230.0
    )
    assert gameday.status == "running"
    timings = at(400, lambda: eval_case_capture(trace=trace, expected_behaviour="Look up once.", actor=me))
    assert timings == {
        "detected": 12.0, "contained": 30.0, "budget_frozen": 95.0, "step_flagged": 150.0, "blast_radius": 230.0,
        "eval_captured": 400.0,
    }  # fmt: skip
    assert gameday.status == "finished"  # every mark reached


def test_a_finished_gameday_stops_its_clock(make_agent, responder, django_capture_on_commit_callbacks, make_client):
    agent = make_agent("refund-bot")
    client = make_client(responder)
    gid = _post(client, {"scenario": "cost-spiral", "agent": "refund-bot", "mode": "tabletop"}).json()["id"]
    assert client.post(f"/gamedays/{gid}/end/").status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        agent_kill(agent=agent, actor=Actor.person(responder))
    body = client.get(f"/api/v1/gamedays/{gid}").json()
    assert body["status"] == "finished" and body["timings"]["contained"] is None


def test_the_pages_start_a_drill_and_show_the_scorecard(make_client, responder, viewer):
    client = make_client(responder)
    r = client.post("/gamedays/", {"scenario": "context-drift", "agent": "", "mode": "tabletop"})
    assert r.status_code == 302
    gameday = Gameday.objects.get()
    page = client.get(r["Location"]).content.decode()
    assert "DRILL" in page and "minute 1: contained" in page and 'hx-trigger="every 2s"' in page
    assert "gameday-comparison" in page
    listing = make_client(viewer).get("/gamedays/").content.decode()
    assert gameday.ref in listing and "Start a drill" not in listing  # viewers see, do not start
    assert make_client(viewer).post("/gamedays/", {"scenario": "context-drift", "mode": "tabletop"}).status_code == 403
    bad = client.post("/gamedays/", {"scenario": "meteor", "mode": "tabletop"})
    assert bad.status_code == 400 and Gameday.objects.count() == 1


def test_a_drill_agent_says_drill_on_its_pages_and_notifications_and_metrics_leave_it_out(
    make_client, responder, make_incident
):
    client = make_client(responder)
    slug = _post(client, {"scenario": "runaway-loop", "mode": "tabletop"}).json()["agent"]
    agent = Agent.objects.get(slug=slug)
    assert agent.is_drill
    assert 'badge-drill" title="registered for a gameday">DRILL' in client.get(f"/agents/{slug}/").content.decode()

    alert, _ = alert_raise(detector="action_repeat", agent=agent, fingerprint="gd-drill", title="loop")
    assert alert_notice(alert=alert, event="raised").title.startswith("[DRILL] ")
    gate = gate_notice(agent=agent, action="kill", actor_label="x", reason="", incident=None)
    assert gate.title.startswith("[DRILL] ")
    assert "DRILL" in client.get("/incidents/alerts/").content.decode()
    assert alert_trigger(alert).summary.startswith("[DRILL] Alert #")  # PagerDuty says so too
    assert alert_message(alert)[0].startswith("[DRILL] ")  # and Slack

    drill = make_incident(title="Drill loop", agents=[agent])
    real = make_incident(title="Real loop", agents=[])
    assert incident_notice(incident=drill, event="declared").title.startswith("[DRILL] ")
    assert not incident_notice(incident=real, event="declared").title.startswith("[DRILL]")
    assert incident_trigger(drill).summary.startswith("[DRILL] INC-")
    assert not incident_trigger(real).summary.startswith("[DRILL]")
    assert incident_summary(drill)[0].startswith("[DRILL] INC-")
    assert not incident_summary(real)[0].startswith("[DRILL]")
    assert (
        'badge-drill" title="an incident of a gameday drill">DRILL'
        in client.get(f"/incidents/{drill.number}/").content.decode()
    )
    assert "DRILL</span>" not in client.get(f"/incidents/{real.number}/").content.decode()

    assert incidents_per_failure_class()["total"] == 1  # the real one only
    assert incidents_per_failure_class(include_drills=True)["total"] == 2
    assert sum(sum(c) for c in time_to_contain_resolve()["counts"].values()) == 1


def test_the_pages_need_a_login_and_unknown_gamedays_are_404(client, make_client, viewer, responder):
    gameday = gameday_start(scenario="cost-spiral", mode="tabletop", actor=Actor.person(responder))
    for url in ("/gamedays/", f"/gamedays/{gameday.pk}/"):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    assert client.get(f"/api/v1/gamedays/{gameday.pk}").status_code in (401, 403)
    assert make_client(viewer).get("/gamedays/999/").status_code == 404
    assert make_client(viewer).post(f"/gamedays/{gameday.pk}/end/").status_code == 403


def test_what_the_drill_process_printed_is_shown_as_text(make_client, viewer, responder):
    gameday = gameday_start(scenario="safety-bypass", mode="tabletop", actor=Actor.person(responder))
    Gameday.objects.filter(pk=gameday.pk).update(injection_error="<script>alert(1)</script> exited 1")
    page = make_client(viewer).get(f"/gamedays/{gameday.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; exited 1" in page and "<script>alert(1)" not in page
