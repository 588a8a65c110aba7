"""The dashboard: the fleet cards and the live part (open incidents, open alerts, recent traces)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.conftest import SPAN, TRACE
from incidents.detection.health import health_scores_compute

pytestmark = pytest.mark.django_db


def test_dashboard_feed_shows_latest_ten_open_alerts(viewer, make_client, make_alert):
    now = timezone.now()
    for i in range(12):
        make_alert(title=f"feed-{i:02d}", last_seen=now - timedelta(minutes=i))
    make_alert(title="gone-resolved", status="resolved", last_seen=now)
    c = make_client(viewer)
    body = c.get("/").content.decode()
    assert "Open alerts" in body
    assert "feed-00" in body and "feed-09" in body
    assert "feed-10" not in body and "gone-resolved" not in body
    live = c.get("/?part=live", HTTP_HX_REQUEST="true").content.decode()
    assert "Open alerts" in live and "feed-00" in live and f"/traces/{TRACE}/?agent=refund-bot&amp;at={SPAN}" in live
    assert "Alerts</a>" in body  # nav link


def test_the_dashboard_shows_each_agents_health_and_trend(make_agent, viewer, make_client):
    make_agent("healthy-bot")
    health_scores_compute()
    html = make_client(viewer).get("/", {"part": "fleet"}, headers={"HX-Request": "true"}).content.decode()
    assert "health-score" in html
    assert "not computed yet" not in html
