"""The delivery log: pending before the attempt, sent or failed after it, listed per alert, incident, agent."""

import pytest

from incidents.models import Delivery
from incidents.notifications.deliveries import delivery_failed, delivery_list, delivery_record, delivery_sent

pytestmark = pytest.mark.django_db


def test_a_delivery_is_pending_then_sent_and_counts_its_attempts(make_alert):
    alert = make_alert(title="loop")
    d = delivery_record(channel="pagerduty", target="events API", event="alert.raised", alert=alert)
    assert d.status == "pending" and d.attempts == 0 and d.agent == alert.agent  # the alert's agent by default
    delivery_failed(delivery=d, error="HTTP 503 from the events API", retrying=True)
    assert d.status == "pending" and d.attempts == 1 and "503" in d.error
    delivery_sent(delivery=d, detail={"dedup_key": "fb-alert-1"})
    d.refresh_from_db()
    assert d.status == "sent" and d.attempts == 2 and d.error == "" and d.sent_at is not None
    assert d.detail == {"dedup_key": "fb-alert-1"}
    assert list(delivery_list(alert=alert)) == [d]
    assert list(delivery_list(agent=alert.agent, channels=["slack"])) == []


def test_a_delivery_that_gives_up_is_failed_with_why(make_alert):
    d = delivery_record(channel="apprise", target="ops-chat", event="gate.killed", alert=make_alert())
    delivery_failed(delivery=d, error="connection refused")
    assert Delivery.objects.get(pk=d.pk).status == "failed"


def test_an_unknown_channel_is_refused_and_nothing_written(make_alert):
    with pytest.raises(ValueError):
        delivery_record(channel="carrier-pigeon", target="x", event="alert.raised", alert=make_alert())
    assert not Delivery.objects.exists()
