"""The delivery log on the pages: each alert's row, the incident page, the agent page's fragment."""

import pytest

from incidents.models import Delivery
from incidents.notifications.deliveries import delivery_failed, delivery_record, delivery_sent

pytestmark = pytest.mark.django_db


def test_each_alert_row_lists_its_notifications_with_why_one_failed(make_alert, viewer, make_client):
    alert = make_alert(title="Refund loop")
    sent = delivery_record(channel="apprise", target="payments-oncall", event="alert.raised", alert=alert)
    delivery_sent(delivery=sent)
    failed = delivery_record(channel="apprise", target="<b>ops</b>", event="alert.raised", alert=alert)
    delivery_failed(delivery=failed, error="Failed to send JSON notification: <script>x</script> error=500.")
    make_alert(title="Quiet alert")
    page = make_client(viewer).get("/incidents/alerts/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('class="alert-deliveries"') == 1  # only the alert that has some
    assert "notifications (2)" in html and "· failed" in html
    assert "payments-oncall" in html and "error=500" in html
    assert "<script>x</script>" not in html and "&lt;b&gt;ops&lt;/b&gt;" in html


def test_the_agent_page_loads_its_gate_notifications(traced_agent, viewer, make_client, make_alert):
    gate = delivery_record(channel="apprise", target="default", event="gate.kill", agent=traced_agent)
    delivery_sent(delivery=gate)
    delivery_record(channel="apprise", target="default", event="alert.raised", alert=make_alert())
    client = make_client(viewer)
    page = client.get("/agents/refund-bot/")
    assert b'hx-get="/incidents/agents/refund-bot/deliveries/"' in page.content
    fragment = client.get("/incidents/agents/refund-bot/deliveries/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert b"gate.kill" in fragment.content and b"alert.raised" not in fragment.content
    assert b"<html" not in fragment.content
    full = client.get("/incidents/agents/refund-bot/deliveries/")  # without htmx: a page of its own
    assert b"<html" in full.content and b"gate.kill" in full.content


def test_the_agent_notifications_need_a_login_and_a_real_agent(traced_agent, client, viewer, make_client):
    assert client.get("/incidents/agents/refund-bot/deliveries/").status_code == 302
    assert make_client(viewer).get("/incidents/agents/nobody/deliveries/").status_code == 404


def test_the_incident_page_says_when_nothing_went_out(make_incident, viewer, make_client):
    incident = make_incident()
    assert not Delivery.objects.exists()
    page = make_client(viewer).get(f"/incidents/{incident.number}/")
    assert b"Nothing sent out about this incident yet." in page.content
