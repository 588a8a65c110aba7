"""Outbound: what Firebreak posts to Slack, checked by the local Slack receiver."""

import json

import pytest

from agents.services import agent_kill
from core.actors import Actor
from incidents.alerts.services import alert_acknowledge
from incidents.integrations.slack import messages, services, tasks
from incidents.integrations.slack.services import SlackRefused, SlackUnavailable
from incidents.integrations.slack.tests.conftest import TOKEN
from incidents.models import Delivery, SlackAlertMessage, SlackChannel, SlackUser
from incidents.services import timeline_note_add

pytestmark = pytest.mark.django_db


def _slack_deliveries():
    return list(Delivery.objects.filter(channel=Delivery.Channel.SLACK).order_by("pk"))


def test_channel_name_is_slack_legal_short_and_readable(make_incident):
    incident = make_incident(title="Refund agent LOOPS on <refunds> & retries!! " + "x" * 200)
    name = messages.channel_name(incident)
    assert name.startswith(f"inc-{incident.number}-refund-agent-loops-on-refunds-retries-")
    assert len(name) <= 80 and name == name.lower()
    assert messages.channel_name(incident, suffix=2).endswith("-2")
    assert len(messages.channel_name(incident, suffix=2)) <= 80


def test_declared_incident_gets_a_channel_a_summary_with_a_link_and_its_commander(fake_slack, make_incident, responder):
    SlackUser.objects.create(slack_user_id="U024BE7LH", user=responder)
    incident = make_incident(title="Refund agent loops", commander=responder)

    channel = services.slack_incident_channel_open(incident_id=incident.pk)

    assert channel is not None
    create = fake_slack.called("conversations.create")
    assert [c.args["name"] for c in create] == [f"inc-{incident.number}-refund-agent-loops"]
    assert all(c.headers["Authorization"] == f"Bearer {TOKEN}" for c in fake_slack.calls)
    assert SlackChannel.objects.get(incident=incident).channel_id == channel.channel_id
    summary = fake_slack.called("chat.postMessage")[0]
    assert summary.args["channel"] == channel.channel_id
    blocks_text = json.dumps(summary.args["blocks"])
    assert f"https://firebreak.example/incidents/{incident.number}/" in blocks_text
    assert "SEV3" in summary.args["text"]
    invite = fake_slack.called("conversations.invite")
    assert [(c.args["channel"], c.args["users"]) for c in invite] == [(channel.channel_id, "U024BE7LH")]
    # The timeline so far follows the summary (the "declared" entry).
    assert len(fake_slack.called("chat.postMessage")) == 1 + incident.timeline.count()
    # Each post is a delivery, none carries the token.
    deliveries = _slack_deliveries()
    assert {d.event for d in deliveries} >= {"incident.channel_created", "incident.declared", "timeline.declared"}
    assert all(d.status == Delivery.Status.SENT for d in deliveries)
    assert all(TOKEN not in d.target and TOKEN not in json.dumps(d.detail) for d in deliveries)


def test_a_hostile_title_cannot_ping_or_link_from_the_summary(fake_slack, make_incident):
    incident = make_incident(title="<!here> refunds & <https://evil.example|login>")
    services.slack_incident_channel_open(incident_id=incident.pk)
    summary = fake_slack.called("chat.postMessage")[0]
    sent = summary.args["text"] + json.dumps(summary.args["blocks"])
    assert "<!here>" not in sent and "<https://evil.example" not in sent
    assert "&lt;!here&gt; refunds &amp; &lt;https://evil.example|login&gt;" in summary.args["text"]
    assert fake_slack.called("conversations.create")[0].args["name"] == (
        f"inc-{incident.number}-here-refunds-https-evil-example-login"
    )


def test_a_taken_channel_name_gets_a_suffix(fake_slack, make_incident):
    incident = make_incident(title="Refund agent loops")
    fake_slack.taken_names.add(f"inc-{incident.number}-refund-agent-loops")

    channel = services.slack_incident_channel_open(incident_id=incident.pk)

    assert channel is not None and channel.name == f"inc-{incident.number}-refund-agent-loops-2"
    failed = Delivery.objects.get(event="incident.channel_created", status=Delivery.Status.FAILED)
    assert "name_taken" in failed.error


def test_opening_twice_makes_one_channel(fake_slack, make_incident):
    incident = make_incident()
    services.slack_incident_channel_open(incident_id=incident.pk)
    services.slack_incident_channel_open(incident_id=incident.pk)
    assert len(fake_slack.called("conversations.create")) == 1
    assert SlackChannel.objects.filter(incident=incident).count() == 1


def test_timeline_is_posted_in_order_once_with_untrusted_text_escaped(fake_slack, make_incident, responder):
    incident = make_incident()
    services.slack_incident_channel_open(incident_id=incident.pk)
    before = len(fake_slack.called("chat.postMessage"))
    timeline_note_add(
        incident=incident, body="Agent said <!channel> & <https://evil.example|click>", actor=Actor.person(responder)
    )
    timeline_note_add(incident=incident, body="second note", actor=Actor.person(responder))

    assert services.slack_timeline_flush(incident_id=incident.pk) == 2
    assert services.slack_timeline_flush(incident_id=incident.pk) == 0  # nothing twice

    posts = fake_slack.called("chat.postMessage")[before:]
    assert len(posts) == 2
    first = json.dumps(posts[0].args["blocks"])
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in first
    assert "<!channel>" not in first and "<https://evil.example" not in first
    assert "&lt;!channel&gt;" in posts[0].args["text"] and "<!channel>" not in posts[0].args["text"]
    assert "second note" in json.dumps(posts[1].args["blocks"])


def test_an_entry_slack_refuses_is_given_up_and_the_next_ones_still_go_out(fake_slack, make_incident, responder):
    incident = make_incident()
    services.slack_incident_channel_open(incident_id=incident.pk)
    timeline_note_add(incident=incident, body="refused one", actor=Actor.person(responder))
    timeline_note_add(incident=incident, body="next one", actor=Actor.person(responder))
    fake_slack.refuse["chat.postMessage"] = "msg_too_long"

    assert services.slack_timeline_flush(incident_id=incident.pk) == 1

    failed = Delivery.objects.get(channel="slack", status=Delivery.Status.FAILED)
    assert "msg_too_long" in failed.error
    assert "next one" in json.dumps(fake_slack.called("chat.postMessage")[-1].args["blocks"])
    assert services.slack_timeline_flush(incident_id=incident.pk) == 0


def test_timeline_waits_for_the_channel(fake_slack, make_incident):
    incident = make_incident()
    assert services.slack_timeline_flush(incident_id=incident.pk) == 0
    assert fake_slack.calls == []


def test_slack_down_is_retryable_and_the_delivery_says_so(fake_slack, make_incident):
    incident = make_incident()
    fake_slack.fail["conversations.create"] = 503

    with pytest.raises(SlackUnavailable):
        services.slack_incident_channel_open(incident_id=incident.pk)

    delivery = Delivery.objects.get(channel="slack", event="incident.channel_created")
    assert delivery.status == Delivery.Status.PENDING and delivery.attempts == 1 and "503" in delivery.error
    assert not SlackChannel.objects.exists()
    # The retry succeeds, counted on the same delivery.
    assert services.slack_incident_channel_open(incident_id=incident.pk) is not None
    delivery = Delivery.objects.get(channel="slack", event="incident.channel_created")
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 2


def test_a_summary_that_failed_is_posted_on_the_retry(fake_slack, make_incident):
    incident = make_incident()
    fake_slack.fail["chat.postMessage"] = 502
    with pytest.raises(SlackUnavailable):
        services.slack_incident_channel_open(incident_id=incident.pk)
    assert SlackChannel.objects.get(incident=incident).summary_ts == ""
    assert services.slack_timeline_flush(incident_id=incident.pk) == 0  # the summary comes first

    services.slack_incident_channel_open(incident_id=incident.pk)

    posts = fake_slack.called("chat.postMessage")
    assert len(fake_slack.called("conversations.create")) == 1
    assert f"INC-{incident.number}" in posts[1].args["text"]  # the retried summary, then the timeline
    assert Delivery.objects.get(event="incident.declared").attempts == 2


def test_the_last_retry_marks_the_delivery_failed_for_good(fake_slack, settings, make_alert):
    settings.FIREBREAK_SLACK_API_URL = "http://127.0.0.1:9/api/"  # nothing listens: every attempt fails
    alert = make_alert()

    # Run where it is called, a retry runs at once: every attempt, then the last one gives up.
    result = tasks.slack_alert_post_task.apply(args=[alert.pk], throw=False)

    assert result.failed()
    delivery = Delivery.objects.get(alert=alert)  # one row: each retry counted on it
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == tasks.MAX_RETRIES + 1
    assert "Slack unreachable" in delivery.error


def test_unreachable_slack_is_retryable(settings, make_incident):
    settings.FIREBREAK_SLACK_BOT_TOKEN = TOKEN
    settings.FIREBREAK_SLACK_API_URL = "http://127.0.0.1:9/api/"  # discard port: nothing listens
    incident = make_incident()
    with pytest.raises(SlackUnavailable):
        services.slack_incident_channel_open(incident_id=incident.pk)


def test_a_refused_call_is_failed_for_good(fake_slack, settings, make_alert):
    settings.FIREBREAK_SLACK_ALERTS_CHANNEL = ""  # off
    assert services.slack_alert_post(alert_id=make_alert().pk) is None
    settings.FIREBREAK_SLACK_BOT_TOKEN = "xoxb-wrong"
    settings.FIREBREAK_SLACK_ALERTS_CHANNEL = "#agent-alerts"
    alert = make_alert()
    with pytest.raises(SlackRefused):
        services.slack_alert_post(alert_id=alert.pk)
    delivery = Delivery.objects.get(alert=alert)
    assert delivery.status == Delivery.Status.FAILED and "not_authed" in delivery.error


def test_slack_off_without_a_token(settings, make_incident):
    settings.FIREBREAK_SLACK_BOT_TOKEN = ""
    incident = make_incident()
    assert services.slack_incident_channel_open(incident_id=incident.pk) is None
    assert not Delivery.objects.exists()


def _buttons(blocks):
    actions = [b for b in blocks if b["type"] == "actions"]
    return {e["action_id"]: e for a in actions for e in a["elements"]}


def test_alert_is_posted_with_kill_pause_acknowledge_then_updated(fake_slack, make_alert, responder):
    alert = make_alert(title="Loop: search called 40 times <b>")

    message = services.slack_alert_post(alert_id=alert.pk)

    assert message is not None
    post = fake_slack.called("chat.postMessage")[0]
    assert post.args["channel"] == "#agent-alerts"
    buttons = _buttons(post.args["blocks"])
    assert set(buttons) == {"firebreak_kill", "firebreak_pause", "firebreak_ack"}
    assert json.loads(buttons["firebreak_kill"]["value"]) == {"alert": alert.pk, "agent": "refund-bot"}
    assert "&lt;b&gt;" in json.dumps(post.args["blocks"]) and "&lt;b&gt;" in post.args["text"]
    stored = SlackAlertMessage.objects.get(alert=alert)
    assert (stored.channel_id, stored.ts) in fake_slack.messages

    alert_acknowledge(alert=alert, actor=Actor.person(responder))
    assert services.slack_alert_update(alert_id=alert.pk)
    update = fake_slack.called("chat.update")[-1]
    assert (update.args["channel"], update.args["ts"]) == (message.channel_id, message.ts)
    assert set(_buttons(update.args["blocks"])) == {"firebreak_kill", "firebreak_pause"}
    assert responder.username in json.dumps(update.args["blocks"])

    agent_kill(agent=alert.agent, actor=Actor.person(responder), reason="loops")
    assert services.slack_alert_ids_for_agent(agent_id=alert.agent_id) == [alert.pk]
    services.slack_alert_update(alert_id=alert.pk)
    killed = fake_slack.called("chat.update")[-1]
    assert _buttons(killed.args["blocks"]) == {}
    assert "killed" in json.dumps(killed.args["blocks"])
    assert [d.event for d in Delivery.objects.filter(alert=alert).order_by("pk")] == [
        "alert.raised",
        "alert.acknowledged",
        "alert.acknowledged",
    ]


def test_a_reopened_alert_updates_its_message(fake_slack, make_alert):
    alert = make_alert()
    services.slack_alert_post(alert_id=alert.pk)
    services.slack_alert_post(alert_id=alert.pk)
    assert len(fake_slack.called("chat.postMessage")) == 1
    assert len(fake_slack.called("chat.update")) == 1
