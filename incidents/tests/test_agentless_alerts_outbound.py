"""An alert from outside that names no Firebreak agent (Alertmanager, Grafana…) goes out like any other:
the notification, the PagerDuty trigger and the Slack message are built without an agent, and Slack's
Kill button is not offered (pressing a stale one stops nothing and says why)."""

import pytest

from incidents.alerts.services import alert_raise
from incidents.integrations.pagerduty.sending import alert_trigger
from incidents.integrations.slack import messages as slack_messages
from incidents.integrations.slack.services import slack_button_press
from incidents.models import Alert, SlackUser
from incidents.notifications.messages import alert_notice

pytestmark = pytest.mark.django_db


@pytest.fixture
def outside_alert():
    alert, _ = alert_raise(
        detector="alertmanager",
        agent=None,
        fingerprint="am:prom:abc123",
        title="HighErrorRate <b>payments</b>",
        source=Alert.Source.ALERTMANAGER,
        source_url="https://prometheus.example/graph?g0.expr=rate",
        integration="prom",
        suggested_severity="SEV1",
    )
    return alert


def test_the_notification_names_the_source_and_links_it(outside_alert):
    notice = alert_notice(alert=outside_alert, event="raised")
    assert "alertmanager" in notice.title and notice.agents == []
    assert "https://prometheus.example/graph" in notice.body


def test_the_page_names_the_source_instead_of_an_agent(outside_alert):
    trigger = alert_trigger(outside_alert)
    assert trigger.source == "firebreak/alertmanager" and trigger.component == "alertmanager"
    assert "on alertmanager" in trigger.summary


def test_slack_offers_acknowledge_but_no_kill_and_a_stale_kill_stops_nothing(outside_alert, responder):
    _, blocks = slack_messages.alert_message(outside_alert)
    actions = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == [slack_messages.ACTION_ACK]
    assert "&lt;b&gt;payments&lt;/b&gt;" in str(blocks)  # outside text escaped for Slack
    SlackUser.objects.create(slack_user_id="U123", user=responder)
    reply = slack_button_press(
        slack_user_id="U123", team_id="", action_id=slack_messages.ACTION_KILL,
        value={"alert": outside_alert.pk, "agent": None},
    )  # fmt: skip
    assert not reply.done and "nothing to stop" in reply.text
