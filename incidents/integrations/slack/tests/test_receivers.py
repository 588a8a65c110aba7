"""The signals feed Slack end to end: a write commits, a receiver enqueues, the task posts."""

import json

import pytest

from agents.services import agent_kill
from core.actors import Actor
from incidents.alerts.services import alert_acknowledge
from incidents.integrations.slack import receivers
from incidents.models import Delivery, SlackAlertMessage, SlackChannel
from incidents.services import timeline_note_add

pytestmark = pytest.mark.django_db


def test_declaring_opens_the_channel_and_the_timeline_follows(
    fake_slack, eager_celery, make_incident, responder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(title="Refund agent loops")
    channel = SlackChannel.objects.get(incident=incident)
    assert channel.name == f"inc-{incident.number}-refund-agent-loops"

    with django_capture_on_commit_callbacks(execute=True):
        timeline_note_add(incident=incident, body="Rolled back prompt v42", actor=Actor.person(responder))

    posts = [c for c in fake_slack.called("chat.postMessage") if c.args["channel"] == channel.channel_id]
    assert "Rolled back prompt v42" in json.dumps(posts[-1].args["blocks"])
    # Every entry went out once: the summary, then one post per timeline entry.
    assert len(posts) == 1 + incident.timeline.count()


def test_alert_events_and_gate_changes_update_the_alert_message(
    fake_slack, eager_celery, make_alert, responder, django_capture_on_commit_callbacks
):
    alert = make_alert()
    receivers.on_alert_changed(sender=None, alert_id=alert.pk, event="raised", actor_label="detector:loop")
    assert SlackAlertMessage.objects.filter(alert=alert).exists()

    with django_capture_on_commit_callbacks(execute=True):
        alert_acknowledge(alert=alert, actor=Actor.person(responder))
    with django_capture_on_commit_callbacks(execute=True):
        agent_kill(agent=alert.agent, actor=Actor.person(responder), reason="loops")

    updates = fake_slack.called("chat.update")
    assert len(updates) == 2
    assert "killed" in json.dumps(updates[-1].args["blocks"])
    events = list(Delivery.objects.filter(alert=alert).order_by("pk").values_list("event", "status"))
    assert events == [("alert.raised", "sent"), ("alert.acknowledged", "sent"), ("gate.kill", "sent")]


def test_receivers_never_raise_and_do_nothing_when_slack_is_off(settings, eager_celery, make_alert):
    settings.FIREBREAK_SLACK_BOT_TOKEN = ""
    alert = make_alert()
    receivers.on_alert_changed(sender=None, alert_id=alert.pk, event="raised", actor_label="x")
    settings.FIREBREAK_SLACK_BOT_TOKEN = "xoxb-x"
    settings.FIREBREAK_SLACK_API_URL = "http://127.0.0.1:9/api/"
    # The task fails (no such incident, Slack unreachable): the write that sent the signal never sees it.
    receivers.on_incident_changed(sender=None, incident_id=10**9, event="declared", detail="", actor_label="x")
    receivers.on_alert_changed(sender=None, alert_id=alert.pk, event="raised", actor_label="x")
    assert not SlackAlertMessage.objects.exists()
