"""Inbound: Slack's documented sample requests, signed as Slack signs them, to the app's request URLs."""

import json
import time

import pytest
from django.db import connection
from django.test import Client

from agents.models import AuditAction, AuditEntry, GateState
from incidents.integrations.slack.tests.conftest import form, sign
from incidents.models import Alert, Incident, SlackUser

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/integrations/slack/events"
INTERACTIONS = "/api/v1/integrations/slack/interactions"
COMMANDS = "/api/v1/integrations/slack/commands"
FORM = "application/x-www-form-urlencoded"

# Slack's sample url_verification event (docs.slack.dev/reference/events/url_verification).
URL_VERIFICATION = {
    "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
    "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    "type": "url_verification",
}


def _post(path, body: bytes, content_type: str, **headers):
    return Client().post(path, data=body, content_type=content_type, **headers)


def _block_actions(*, user_id: str, action_id: str, value: str, response_url: str) -> bytes:
    """Slack's sample block_actions payload (docs.slack.dev/reference/interaction-payloads/block_actions-payload),
    with a Firebreak button in it."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "user": {"id": user_id, "username": "jtorrance", "team_id": "T9TK3CUKW"},
        "api_app_id": "AABA1ABCD",
        "token": "9s8d9as89d8as9d8as989",
        "container": {"type": "message", "message_ts": "1548261231.000200", "channel_id": "CBR2V3XEX"},
        "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        "channel": {"id": "CBR2V3XEX", "name": "review-updates"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "alert-1",
                "text": {"type": "plain_text", "text": "Kill", "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": "1548426417.840180",
            }
        ],
    }
    return form(payload=json.dumps(payload))


def _command(text: str, user_id: str = "U2147483697") -> bytes:
    """Slack's sample slash command request (docs.slack.dev/interactivity/implementing-slash-commands)."""
    return form(
        token="gIkuvaNzQIHg97ATvDxqgjtO",
        team_id="T0001",
        team_domain="example",
        enterprise_id="E0001",
        enterprise_name="Globular Construct Inc",
        channel_id="C2147483705",
        channel_name="test",
        user_id=user_id,
        user_name="Steve",
        command="/firebreak",
        text=text,
        response_url="https://hooks.slack.com/commands/1234/5678",
        trigger_id="13345224609.738474920.8088930838d88f008e0",
        api_app_id="A123456",
    )


# --- signatures --------------------------------------------------------------------------------------------


def test_url_verification_answers_the_challenge(fake_slack):
    body = json.dumps(URL_VERIFICATION).encode()
    response = _post(EVENTS, body, "application/json", **sign(body))
    assert response.status_code == 200
    assert response.json() == {"challenge": URL_VERIFICATION["challenge"]}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda b: sign(b, secret="not-the-secret"), id="forged"),
        pytest.param(lambda b: sign(b, timestamp=int(time.time()) - 301), id="stale"),
        pytest.param(lambda b: sign(b + b" "), id="body-changed"),
        pytest.param(lambda b: {}, id="unsigned"),
        pytest.param(lambda b: {**sign(b), "HTTP_X_SLACK_REQUEST_TIMESTAMP": "yesterday"}, id="bad-timestamp"),
    ],
)
def test_forged_or_stale_requests_are_refused_and_do_nothing(fake_slack, make_alert, responder, headers):
    SlackUser.objects.create(slack_user_id="UA8RXUSPL", user=responder)
    alert = make_alert()
    value = json.dumps({"alert": alert.pk, "agent": alert.agent.slug})
    body = _block_actions(
        user_id="UA8RXUSPL", action_id="firebreak_kill", value=value, response_url=fake_slack.hooks_url
    )

    response = _post(INTERACTIONS, body, FORM, **headers(body))

    assert response.status_code == 401
    assert "error" in response.json()
    alert.agent.refresh_from_db()
    assert alert.agent.state == GateState.ACTIVE
    assert not AuditEntry.objects.filter(action=AuditAction.KILL).exists()

    cmd = _command("declare SEV1 Forged")
    assert _post(COMMANDS, cmd, FORM, **headers(cmd)).status_code == 401
    assert not Incident.objects.exists()
    event = json.dumps(URL_VERIFICATION).encode()
    assert _post(EVENTS, event, "application/json", **headers(event)).status_code == 401


def test_without_a_signing_secret_everything_is_refused(settings):
    settings.FIREBREAK_SLACK_SIGNING_SECRET = ""
    body = json.dumps(URL_VERIFICATION).encode()
    response = _post(EVENTS, body, "application/json", **sign(body))
    assert response.status_code == 403
    assert "FIREBREAK_SLACK_SIGNING_SECRET" in response.json()["error"]


# --- buttons ------------------------------------------------------------------------------------------------


def _press(fake_slack, alert, action_id="firebreak_kill", user_id="UA8RXUSPL"):
    value = json.dumps({"alert": alert.pk, "agent": alert.agent.slug})
    body = _block_actions(user_id=user_id, action_id=action_id, value=value, response_url=fake_slack.hooks_url + "a/1")
    return _post(INTERACTIONS, body, FORM, **sign(body))


def test_kill_button_kills_the_agent_as_the_mapped_user(fake_slack, eager_celery, make_alert, responder):
    SlackUser.objects.create(slack_user_id="UA8RXUSPL", user=responder)
    alert = make_alert(title="Loop on search")

    response = _press(fake_slack, alert)  # answered inline: the kill is done before the reply (timed in README)

    assert response.status_code == 200
    alert.agent.refresh_from_db()
    assert alert.agent.state == GateState.KILLED
    entry = AuditEntry.objects.get(agent=alert.agent, action=AuditAction.KILL)
    assert entry.actor == responder and entry.actor_label == responder.username
    assert "Loop on search" in entry.reason
    assert fake_slack.responses[-1]["response_type"] == "ephemeral"
    assert f"Killed {alert.agent.slug}" in fake_slack.responses[-1]["text"]


def test_pause_and_acknowledge_buttons(fake_slack, eager_celery, make_alert, responder):
    SlackUser.objects.create(slack_user_id="UA8RXUSPL", user=responder)
    alert = make_alert()
    assert _press(fake_slack, alert, "firebreak_ack").status_code == 200
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.handled_by == responder.username
    assert _press(fake_slack, alert, "firebreak_pause").status_code == 200
    alert.agent.refresh_from_db()
    assert alert.agent.state == GateState.PAUSED


def test_a_viewers_press_is_refused_and_told_why(fake_slack, eager_celery, make_alert, viewer):
    SlackUser.objects.create(slack_user_id="UA8RXUSPL", user=viewer)
    alert = make_alert()

    response = _press(fake_slack, alert)

    assert response.status_code == 200
    alert.agent.refresh_from_db()
    assert alert.agent.state == GateState.ACTIVE
    assert not AuditEntry.objects.filter(action=AuditAction.KILL).exists()
    reply = fake_slack.responses[-1]
    assert reply["response_type"] == "ephemeral" and "responder role" in reply["text"]


def test_an_unmapped_slack_user_is_refused_and_told_why(fake_slack, eager_celery, make_alert):
    alert = make_alert()
    _press(fake_slack, alert, user_id="UNOBODY01")
    alert.agent.refresh_from_db()
    assert alert.agent.state == GateState.ACTIVE
    assert "not linked to a Firebreak user" in fake_slack.responses[-1]["text"]
    assert fake_slack.called("users.info")[0].args["user"] == "UNOBODY01"


def test_a_slack_user_is_linked_once_by_their_email(fake_slack, eager_celery, make_alert, responder):
    responder.email = "oncall@example.com"
    responder.save()
    fake_slack.emails["UA8RXUSPL"] = "OnCall@example.com"
    alert = make_alert()

    _press(fake_slack, alert)

    alert.agent.refresh_from_db()
    assert alert.agent.state == GateState.KILLED
    link = SlackUser.objects.get(slack_user_id="UA8RXUSPL")
    assert link.user == responder and link.linked_by == "email"


def test_a_reply_only_goes_to_slacks_hooks(fake_slack, eager_celery, make_alert, responder):
    SlackUser.objects.create(slack_user_id="UA8RXUSPL", user=responder)
    alert = make_alert()
    value = json.dumps({"alert": alert.pk, "agent": alert.agent.slug})
    body = _block_actions(
        user_id="UA8RXUSPL", action_id="firebreak_ack", value=value, response_url=fake_slack.url + "/elsewhere"
    )
    assert _post(INTERACTIONS, body, FORM, **sign(body)).status_code == 200
    assert fake_slack.responses == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (form(payload="not json"), "payload"),
        (form(other="x"), "payload"),
        (form(payload=json.dumps({"type": "block_actions", "actions": [{"action_id": "firebreak_kill"}]})), "user"),
        (form(payload=json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": []})), "actions"),
        (
            form(
                payload=json.dumps(
                    {
                        "type": "block_actions",
                        "user": {"id": "U1"},
                        "actions": [{"action_id": "firebreak_kill", "value": "7"}],
                    }
                )
            ),
            "value",
        ),
    ],
)
def test_bad_interaction_payloads_are_400_naming_the_field(fake_slack, make_agent, body, field):
    agent = make_agent()
    response = _post(INTERACTIONS, body, FORM, **sign(body))
    assert response.status_code == 400
    assert field in response.json()["error"]
    agent.refresh_from_db()
    assert agent.state == GateState.ACTIVE


# --- /firebreak ---------------------------------------------------------------------------------------------


def _run(text: str, user_id: str = "U2147483697"):
    body = _command(text, user_id)
    response = _post(COMMANDS, body, FORM, **sign(body))
    assert response.status_code == 200
    data = response.json()
    assert data["response_type"] == "ephemeral"
    return data["text"]


def test_declare_command_declares_as_the_mapped_user(fake_slack, responder):
    SlackUser.objects.create(slack_user_id="U2147483697", user=responder)
    text = _run("declare sev2 Refund agent <loops> & refunds twice")
    incident = Incident.objects.get()
    assert incident.severity == "SEV2" and incident.title == "Refund agent <loops> & refunds twice"
    assert incident.declared_by == responder and incident.commander == responder
    assert f"INC-{incident.number}" in text and "&lt;loops&gt; &amp;" in text


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ("declare SEV9 Title", "severity"),
        ("declare", "severity"),
        ("declare SEV1", "title"),
        ("declare SEV1 " + "x" * 400, "title"),
    ],
)
def test_bad_declare_names_the_field_and_writes_nothing(fake_slack, responder, command, field):
    SlackUser.objects.create(slack_user_id="U2147483697", user=responder)
    assert _run(command).startswith(f"{field}:")
    assert not Incident.objects.exists()


def test_kill_and_pause_commands(fake_slack, make_agent, responder):
    SlackUser.objects.create(slack_user_id="U2147483697", user=responder)
    agent = make_agent("refund-bot")
    other = make_agent("triage-bot")

    assert "Killed `refund-bot`" in _run("kill refund-bot loops on refunds")
    agent.refresh_from_db()
    assert agent.state == GateState.KILLED
    entry = AuditEntry.objects.get(agent=agent, action=AuditAction.KILL)
    assert entry.actor == responder and entry.reason == "loops on refunds"

    assert "Paused `triage-bot`" in _run("pause triage-bot drifting")
    other.refresh_from_db()
    assert other.state == GateState.PAUSED

    status = _run("status")
    assert "refund-bot" in status and "killed" in status and "triage-bot" in status


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ("kill", "agent"),
        ("kill no-such-agent because", "agent"),
        ("kill refund-bot", "reason"),
        ("pause refund-bot", "reason"),
    ],
)
def test_bad_kill_names_the_field_and_changes_nothing(fake_slack, make_agent, responder, command, field):
    SlackUser.objects.create(slack_user_id="U2147483697", user=responder)
    agent = make_agent("refund-bot")
    assert _run(command).startswith(f"{field}:")
    agent.refresh_from_db()
    assert agent.state == GateState.ACTIVE
    assert not AuditEntry.objects.filter(action__in=[AuditAction.KILL, AuditAction.PAUSE]).exists()


def test_a_viewer_cannot_kill_or_declare_but_can_ask_status(fake_slack, make_agent, viewer):
    SlackUser.objects.create(slack_user_id="U2147483697", user=viewer)
    agent = make_agent("refund-bot")
    assert "responder role" in _run("kill refund-bot because")
    assert "responder role" in _run("declare SEV1 Nope")
    agent.refresh_from_db()
    assert agent.state == GateState.ACTIVE and not Incident.objects.exists()
    assert "Open incidents" in _run("status")


def test_slack_down_while_looking_a_member_up_is_said_not_crashed(fake_slack, make_agent):
    agent = make_agent("refund-bot")
    fake_slack.fail["users.info"] = 503
    assert "could not look you up in Slack" in _run("kill refund-bot because", user_id="UNOBODY01")
    agent.refresh_from_db()
    assert agent.state == GateState.ACTIVE


def test_help_and_unknown_commands(fake_slack):
    assert "declare SEV1|SEV2|SEV3 &lt;title&gt;" in _run("help")
    assert "<" not in _run("help")
    assert "declare SEV1|SEV2|SEV3" in _run("")
    assert _run("launch <rockets>").startswith("Unknown command `launch`")


def test_an_unmapped_user_cannot_run_commands(fake_slack, make_agent):
    agent = make_agent("refund-bot")
    assert "not linked to a Firebreak user" in _run("kill refund-bot because", user_id="UNOBODY01")
    agent.refresh_from_db()
    assert agent.state == GateState.ACTIVE


def test_a_command_without_user_id_is_400(fake_slack):
    body = form(command="/firebreak", text="status")
    response = _post(COMMANDS, body, FORM, **sign(body))
    assert response.status_code == 400 and "user_id" in response.json()["error"]


def test_a_body_that_is_not_utf8_is_400(fake_slack):
    body = b"payload=\xff\xfe"
    response = _post(INTERACTIONS, body, FORM, **sign(body))
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_postgresql_down_is_a_503_with_retry_after_not_a_500(fake_slack, tmp_path):
    """Slack retries a failed request URL call: a store that is down must answer 503, never 500."""
    body = _command("status")
    saved = connection.settings_dict["HOST"]
    connection.close()
    connection.settings_dict["HOST"] = str(tmp_path)  # no PostgreSQL socket there: every connect fails
    try:
        response = Client(raise_request_exception=False).post(COMMANDS, data=body, content_type=FORM, **sign(body))
    finally:
        connection.close()
        connection.settings_dict["HOST"] = saved
    assert response.status_code == 503
    assert response["Retry-After"] and "error" in response.json()
