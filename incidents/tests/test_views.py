import pytest

from incidents.models import Alert, Incident, RunbookStep, TimelineEntry
from traces.models import Trace

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def declare_data(**overrides):
    data = {
        "title": "Refund agent looping",
        "severity": "SEV2",
        "failure_class": "runaway-loop",
        "agents": ["refund-bot"],
        "traces": "a" * 32,
        "summary": "",
    }
    data.update(overrides)
    return data


def test_declare_form_is_prefilled_from_a_trace(responder, make_client, traced_agent):
    body = make_client(responder).get(f"/incidents/new/?trace={'a' * 32}&agent=refund-bot").content.decode()
    assert f'value="{"a" * 32}"' in body
    assert 'value="refund-bot" checked' in body or ('value="refund-bot"' in body and "checked" in body)
    # each severity with its definition, each class with its signals
    assert "corrupted data or exposed sensitive information" in body
    assert "Signals:" in body


def test_declare_form_is_prefilled_from_an_alert(responder, make_client, traced_agent):
    alert = Alert.objects.create(
        detector="loop",
        agent=traced_agent,
        trace=Trace.objects.get(trace_id="a" * 32),
        fingerprint="fp",
        title="Repeated identical tool calls",
        suggested_severity="SEV1",
        failure_class_id=None,
    )
    response = make_client(responder).get(f"/incidents/new/?alert={alert.pk}")
    form = response.context["form"]
    assert form.initial["title"] == "Repeated identical tool calls"
    assert form.initial["severity"] == "SEV1"
    assert form.initial["agents"] == ["refund-bot"] and form.initial["traces"] == "a" * 32


def test_responder_declares_and_lands_on_the_incident_with_its_runbook(responder, make_client, traced_agent):
    c = make_client(responder)
    response = c.post("/incidents/new/", declare_data())
    assert response.status_code == 302 and response.url == "/incidents/1/"
    page = c.get("/incidents/1/").content.decode()
    assert "INC-1" in page and "Runbook" in page
    assert RunbookStep.objects.filter(incident__number=1).count() > 0
    assert "a" * 13 in page  # trace attached


def test_declare_form_shows_errors_and_writes_nothing(responder, make_client, traced_agent):
    response = make_client(responder).post("/incidents/new/", declare_data(traces="f" * 32, severity="SEV9"))
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"traces", "severity"}
    assert Incident.objects.count() == 0


def test_viewer_sees_the_vocabulary_but_cannot_declare(viewer, make_client, traced_agent):
    c = make_client(viewer)
    assert "needs the responder role" in c.get("/incidents/new/").content.decode()
    assert c.post("/incidents/new/", declare_data()).status_code == 403
    assert Incident.objects.count() == 0


def test_note_via_htmx_renders_markdown_inert(responder, make_client, make_incident):
    incident = make_incident()
    c = make_client(responder)
    response = c.post(
        f"/incidents/{incident.number}/notes", {"body": f"**checked** the logs {XSS}"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'id="timeline"' in body
    assert "<strong>checked</strong>" in body
    assert XSS not in body and "<script>" not in body
    page = c.get(f"/incidents/{incident.number}/").content.decode()
    assert XSS not in page


def test_system_entries_are_markdown_sanitized_and_their_actor_escaped(viewer, make_client, make_incident):
    incident = make_incident()
    TimelineEntry.objects.create(incident=incident, kind="gate", body=f"**kill** `refund-bot` {XSS}", actor_label=XSS)
    page = make_client(viewer).get(f"/incidents/{incident.number}/").content.decode()
    assert XSS not in page and "<strong>kill</strong> <code>refund-bot</code>" in page
    assert "`refund-bot`" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_runbook_tick_without_js_and_with_htmx(responder, make_client, make_incident):
    incident = make_incident()
    first, second = incident.runbook_steps.all()[:2]
    c = make_client(responder)
    response = c.post(f"/incidents/{incident.number}/runbook/{first.pk}", {"done": "1"})
    assert response.status_code == 302
    response = c.post(
        f"/incidents/{incident.number}/runbook/{second.pk}", {"done": "1"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and 'id="runbook"' in response.content.decode()
    assert "fb:incident-changed" in response.headers["HX-Trigger"]
    assert RunbookStep.objects.filter(incident=incident, done_at__isnull=False).count() == 2
    assert incident.timeline.filter(kind="runbook").count() == 2


def test_status_and_close_controls(responder, make_client, make_incident):
    incident = make_incident(severity="SEV2")
    c = make_client(responder)
    page = c.get(f"/incidents/{incident.number}/").content.decode()
    assert "Needs a published post-mortem (SEV1/SEV2)" in page
    assert "no eval case yet" in page
    assert 'hx-get="/incidents/1/blast-radius/"' in page and 'href="/incidents/1/postmortem/"' in page
    assert c.post(f"/incidents/{incident.number}/status", {"status": "investigating"}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "investigating"
    c.post(f"/incidents/{incident.number}/status", {"status": "declared"})  # backwards: refused with a message
    incident.refresh_from_db()
    assert incident.status == "investigating"
    response = c.post(f"/incidents/{incident.number}/close", follow=True)
    assert "Cannot close yet" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == "investigating"


def test_viewer_writes_are_403_and_write_nothing(viewer, make_client, make_incident):
    incident = make_incident()
    step = incident.runbook_steps.first()
    c = make_client(viewer)
    n = f"/incidents/{incident.number}"
    page = c.get(f"{n}/").content.decode()
    assert "Add note" not in page and "Set status" not in page
    for url, data in [
        (f"{n}/status", {"status": "investigating"}),
        (f"{n}/severity", {"severity": "SEV1"}),
        (f"{n}/close", {}),
        (f"{n}/notes", {"body": "hi"}),
        (f"{n}/runbook/{step.pk}", {"done": "1"}),
    ]:
        assert c.post(url, data).status_code == 403, url
    incident.refresh_from_db()
    assert incident.status == "declared" and incident.severity == "SEV3"
    assert incident.timeline.count() == 1
    assert not RunbookStep.objects.filter(done_at__isnull=False).exists()


def test_kill_button_posts_back_to_the_incident(responder, make_client, make_incident, traced_agent):
    incident = make_incident(agents=["refund-bot"])
    c = make_client(responder)
    page = c.get(f"/incidents/{incident.number}/").content.decode()
    assert 'action="/agents/refund-bot/kill"' in page
    response = c.post("/agents/refund-bot/kill", {"next": f"/incidents/{incident.number}/", "reason": "from INC-1"})
    assert response.status_code == 302 and response.url == f"/incidents/{incident.number}/"
