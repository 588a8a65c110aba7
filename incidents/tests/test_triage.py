"""Issue 13, the responder at 3 a.m.: declare with a title and a severity, classify later, take
command, close with the loose ends shown."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from agents.services import agent_pause
from core.actors import Actor
from incidents import hooks, receivers, services
from incidents.conftest import TRACE
from incidents.detection.streaming.session_caps import _over
from incidents.models import ActionItem, Alert, Incident, PostMortem, RunbookStep, TimelineEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def incidents_checks_only(monkeypatch):
    """Only the closure checks incidents owns (evals adds "an eval case ran green"): the loose ends
    are what these tests look at."""
    monkeypatch.setattr(
        hooks, "closure_checks", [receivers.postmortem_published_for_sev1_sev2, receivers.sev1_action_items_done]
    )


URL = "/api/v1/incidents"


def test_declare_needs_only_a_title_and_a_severity_through_the_service(responder):
    incident = services.incident_declare(title="Bot is weird", severity="SEV2", actor=Actor.person(responder))
    assert incident.failure_class is None and incident.status == "declared"
    assert "not yet classified" in TimelineEntry.objects.get(incident=incident, kind="declared").body


def test_declare_with_title_and_severity_only_through_the_api(responder, make_client):
    response = make_client(responder).post(
        URL, {"title": "Bot is weird", "severity": "SEV3"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["failure_class"] is None


def test_declare_with_title_and_severity_only_through_the_form(responder, make_client):
    response = make_client(responder).post("/incidents/new/", {"title": "Bot is weird", "severity": "SEV3"})
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get()
    assert incident.failure_class is None
    page = make_client(responder).get(f"/incidents/{incident.number}/").content.decode()
    assert "Not yet classified" in page and 'name="failure_class"' in page


def test_an_unknown_class_is_still_refused_and_nothing_is_written(responder, make_client):
    response = make_client(responder).post(
        URL, {"title": "x", "severity": "SEV3", "failure_class": "nope"}, content_type="application/json"
    )
    assert response.status_code == 400 and "failure_class" in response.json()["detail"]
    assert not Incident.objects.exists()


def test_classifying_later_adds_the_class_runbook_and_a_timeline_entry(make_incident, responder, make_client):
    incident = make_incident(failure_class=None)
    assert not RunbookStep.objects.filter(incident=incident).exists()
    response = make_client(responder).post(
        f"{URL}/{incident.number}/failure-class", {"failure_class": "runaway-loop"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["failure_class"] == "runaway-loop"
    assert RunbookStep.objects.filter(incident=incident).exists()
    assert TimelineEntry.objects.filter(incident=incident, body__contains="not yet classified → ").exists()
    again = make_client(responder).post(
        f"{URL}/{incident.number}/failure-class", {"failure_class": "runaway-loop"}, content_type="application/json"
    )
    assert again.status_code == 400


def test_declaring_from_a_trace_prefills_title_severity_agent_and_links_its_open_alert(
    responder, make_client, make_alert
):
    alert = make_alert(title="Loop on search", suggested_severity="SEV1")
    page = make_client(responder).get(f"/incidents/new/?trace={TRACE}").content.decode()
    assert 'value="Loop on search"' in page
    assert 'value="SEV1" required checked' in page
    assert 'id="agents-chosen"' in page and "refund-bot" in page
    assert f'name="alert" value="{alert.pk}"' in page
    response = make_client(responder).post(
        "/incidents/new/",
        {"title": "Loop on search", "severity": "SEV1", "agents": ["refund-bot"], "traces": TRACE, "alert": alert.pk},
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.incident is not None


def test_declaring_from_a_trace_without_an_alert_suggests_a_title(responder, make_client, traced_agent):
    page = make_client(responder).get(f"/incidents/new/?trace={TRACE}").content.decode()
    assert 'value="refund-bot: trajectory' in page
    assert 'data-default-severity="' in page and "js/incident_declare.js" in page


def test_close_with_loose_ends_is_409_listing_them_until_confirmed(
    make_incident, responder, make_client, incidents_checks_only
):
    incident = make_incident(severity="SEV3")  # runaway-loop: runbook steps not done, never resolved
    c = make_client(responder)
    response = c.post(f"{URL}/{incident.number}/close", {}, content_type="application/json")
    assert response.status_code == 409, response.content
    ends = response.json()["loose_ends"]
    assert any("runbook step" in e for e in ends) and any("Resolved" in e for e in ends)
    incident.refresh_from_db()
    assert incident.status == "declared"
    response = c.post(f"{URL}/{incident.number}/close", {"confirm": True}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"
    assert TimelineEntry.objects.filter(incident=incident, body__contains="Closed with loose ends").exists()


def test_close_page_asks_to_confirm_the_loose_ends(make_incident, responder, make_client, incidents_checks_only):
    incident = make_incident(severity="SEV3")
    c = make_client(responder)
    response = c.post(f"/incidents/{incident.number}/close")
    assert response.status_code == 409
    assert "Close anyway" in response.content.decode() and "never marked Resolved" in response.content.decode()
    assert c.post(f"/incidents/{incident.number}/close", {"confirm": "1"}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "closed"


def test_a_paused_agent_is_a_loose_end(make_incident, make_agent, responder, incidents_checks_only):
    agent = make_agent("pausy")
    incident = make_incident(severity="SEV3", agents=[agent])
    agent_pause(agent=agent, reason="looping", actor=Actor.person(responder))
    with pytest.raises(services.LooseEnds) as caught:
        services.incident_close(incident=incident, actor=Actor.person(responder))
    assert "Agent pausy is still paused" in caught.value.loose_ends


def test_the_close_page_ties_loose_ends_in_place_resume_and_mark_resolved(
    make_incident, make_agent, responder, make_client, incidents_checks_only
):
    agent = make_agent("pausy")
    incident = make_incident(severity="SEV3", agents=[agent])
    agent_pause(agent=agent, reason="looping", actor=Actor.person(responder))
    c = make_client(responder)
    close = f"/incidents/{incident.number}/close"
    page = c.get(close)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Resume pausy" in html and "Mark resolved" in html and "Open the runbook" in html

    # Resume from the close page: a reason is required, the audit row names the incident, back to this page.
    back = c.post("/agents/pausy/resume", {"reason": "fixed the prompt", "incident": incident.number, "next": close})
    assert back.status_code == 302 and back["Location"] == close
    agent.refresh_from_db()
    assert agent.state == "active"
    assert agent.audit_entries.filter(action="resume", incident_number=incident.number).exists()
    back = c.post(f"/incidents/{incident.number}/status", {"status": "resolved", "next": close})
    assert back.status_code == 302 and back["Location"] == close
    html = c.get(close).content.decode()
    assert "still paused" not in html and "never marked Resolved" not in html
    assert "runbook step" in html  # what is left still shows


def test_the_close_page_sends_elsewhere_when_nothing_is_loose_and_refuses_viewers(
    make_incident, responder, viewer, make_client, incidents_checks_only
):
    incident = make_incident(severity="SEV3")
    assert make_client(viewer).get(f"/incidents/{incident.number}/close").status_code == 403
    for step in incident.runbook_steps.all():
        services.runbook_tick(incident=incident, step_id=step.pk, actor=Actor.person(responder))
    services.incident_status_set(incident=incident, status="resolved", actor=Actor.person(responder))
    response = make_client(responder).get(f"/incidents/{incident.number}/close")
    assert response.status_code == 302 and response["Location"].endswith(f"/incidents/{incident.number}/#close")
    # a hostile next goes nowhere but the incident
    response = make_client(responder).post(
        f"/incidents/{incident.number}/status", {"status": "mitigated", "next": "https://evil.example/"}
    )
    assert response["Location"].startswith(f"/incidents/{incident.number}/")


def test_sev1_with_open_action_items_cannot_close_even_confirmed(
    make_incident, responder, make_client, incidents_checks_only
):
    incident = make_incident(severity="SEV1")
    pm = PostMortem.objects.create(incident=incident, status=PostMortem.Status.PUBLISHED)
    ActionItem.objects.create(postmortem=pm, title="Cap the loop", kind=ActionItem.Kind.CIRCUIT_BREAKER)
    response = make_client(responder).post(
        f"{URL}/{incident.number}/close", {"confirm": True}, content_type="application/json"
    )
    assert response.status_code == 409, response.content
    assert any("action items" in b for b in response.json()["blockers"])
    incident.refresh_from_db()
    assert incident.status == "declared"


def test_take_command_sets_the_commander_and_is_on_the_timeline(make_incident, make_user, make_client):
    incident = make_incident(commander=None, actor=Actor.detector("loop"))
    assert incident.commander is None
    other = make_user("responder", username="night-owl")
    response = make_client(other).post(f"{URL}/{incident.number}/take-command")
    assert response.status_code == 200, response.content
    assert response.json()["commander"] == "night-owl"
    assert TimelineEntry.objects.filter(incident=incident, body="night-owl took command").exists()
    assert make_client(other).post(f"{URL}/{incident.number}/take-command").status_code == 400


def test_a_viewer_cannot_take_command(make_incident, viewer, make_client):
    incident = make_incident()
    assert make_client(viewer).post(f"{URL}/{incident.number}/take-command").status_code == 403
    incident.refresh_from_db()
    assert incident.commander is not None and incident.commander.username != viewer.username


def test_an_incident_declared_after_its_agents_were_paused_is_contained(make_agent, responder):
    agent = make_agent("stopped")
    agent_pause(agent=agent, reason="detector", actor=Actor.detector("loop"))
    incident = services.incident_declare(title="Loop", severity="SEV2", agents=[agent], actor=Actor.detector("loop"))
    assert incident.status == "contained"


def test_close_refuses_bad_confirm_input_without_writing(make_incident, responder, make_client):
    incident = make_incident(severity="SEV3")
    response = make_client(responder).post(
        f"{URL}/{incident.number}/close", {"confirm": "maybe?"}, content_type="application/json"
    )
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.status == "declared"


def test_classifying_needs_a_known_class(make_incident, responder):
    incident = make_incident(failure_class=None)
    with pytest.raises(ValidationError):
        services.incident_failure_class_set(incident=incident, failure_class="nope", actor=Actor.person(responder))


def test_a_kill_from_the_incident_page_gives_the_incident_as_its_reason(
    make_incident, make_agent, responder, make_client
):
    agent = make_agent("killable")
    incident = make_incident(title="Refunds for everyone", agents=[agent])
    c = make_client(responder)
    page = c.get(f"/incidents/{incident.number}/").content.decode()
    assert f'name="reason" value="INC-{incident.number}: Refunds for everyone"' in page
    c.post(
        "/agents/killable/kill",
        {"reason": f"INC-{incident.number}: Refunds for everyone", "incident": incident.number},
    )
    agent.refresh_from_db()
    assert agent.state == "killed" and agent.state_reason == f"INC-{incident.number}: Refunds for everyone"


def test_session_cap_titles_read_as_numbers():
    assert _over("tokens", 1213371, 150000) == "1,213,371 > 150,000 tokens"
    assert _over("cost", Decimal("3.157980"), Decimal("2")) == "cost $3.16 > $2.00"
    assert _over("tool_calls", 61, 60) == "61 > 60 tool calls"


def test_take_command_and_classify_through_the_incident_page_forms(make_incident, responder, make_client):
    incident = make_incident(failure_class=None, commander=None, actor=Actor.detector("loop"))
    c = make_client(responder)
    page = c.get(f"/incidents/{incident.number}/").content.decode()
    assert "Take command" in page and "Not yet classified" in page
    assert c.post(f"/incidents/{incident.number}/command").status_code == 302
    assert c.post(f"/incidents/{incident.number}/failure-class", {"failure_class": "tool-misuse"}).status_code == 302
    incident.refresh_from_db()
    assert incident.commander == responder and incident.failure_class.slug == "tool-misuse"
    # an unknown class is refused with a message and changes nothing
    page = c.post(f"/incidents/{incident.number}/failure-class", {"failure_class": "nope"}, follow=True)
    assert "Unknown failure class" in page.content.decode()
    incident.refresh_from_db()
    assert incident.failure_class.slug == "tool-misuse"
