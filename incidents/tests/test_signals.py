"""incidents.signals: the outbound senders hear alerts and incident events once the write commits."""

import pytest

from core.actors import Actor
from incidents import services, signals
from incidents.alerts.services import alert_acknowledge, alert_raise, alert_resolve

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    events: list[tuple] = []

    def on_alert(sender, alert_id, event, actor_label, **kw):
        events.append(("alert", alert_id, event, actor_label))

    def on_incident(sender, incident_id, event, detail, actor_label, **kw):
        events.append(("incident", incident_id, event, actor_label))

    signals.alert_changed.connect(on_alert, dispatch_uid="test-alert")
    signals.incident_changed.connect(on_incident, dispatch_uid="test-incident")
    yield events
    signals.alert_changed.disconnect(dispatch_uid="test-alert")
    signals.incident_changed.disconnect(dispatch_uid="test-incident")


def test_alert_raised_acknowledged_resolved_and_reopened_are_announced(
    make_agent, responder, heard, django_capture_on_commit_callbacks
):
    agent = make_agent("loopy")
    with django_capture_on_commit_callbacks(execute=True):
        alert, _ = alert_raise(detector="loop", agent=agent, fingerprint="fp-1", title="loop")
        alert_raise(detector="loop", agent=agent, fingerprint="fp-1", title="loop")  # a repeat: nothing new
        alert_acknowledge(alert=alert, actor=Actor.person(responder))
        alert_resolve(alert=alert, actor=Actor.person(responder))
        alert_raise(detector="loop", agent=agent, fingerprint="fp-1", title="loop")
    assert [e[2] for e in heard] == ["raised", "acknowledged", "resolved", "reopened"]
    assert heard[1][3] == responder.username and heard[0][3] == "detector:loop"


def test_incident_events_are_announced_after_commit_with_who(responder, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as pending:
        incident = services.incident_declare(title="Bot loops", severity="SEV2", actor=Actor.person(responder))
    assert heard == []  # nothing before the commit
    for callback in pending:
        callback()
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_severity_set(incident=incident, severity="SEV1", actor=Actor.person(responder))
        services.incident_status_set(incident=incident, status="resolved", actor=Actor.system("pagerduty"))
    assert [(e[2], e[3]) for e in heard] == [
        ("declared", responder.username),
        ("severity", responder.username),
        ("resolved", "pagerduty"),
    ]


def test_every_timeline_entry_is_announced_once_committed(responder, django_capture_on_commit_callbacks):
    heard: list[tuple] = []

    def on_entry(sender, entry_id, incident_id, kind, actor_label, **kw):
        heard.append((kind, actor_label))

    signals.timeline_recorded.connect(on_entry, dispatch_uid="test-timeline")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            incident = services.incident_declare(title="Bot loops", severity="SEV3", actor=Actor.person(responder))
            services.timeline_note_add(incident=incident, body="looking at the trace", actor=Actor.person(responder))
    finally:
        signals.timeline_recorded.disconnect(dispatch_uid="test-timeline")
    assert heard[0] == ("declared", responder.username) and heard[-1] == ("note", responder.username)
