"""The dashboard: the fleet cards and the live part (open incidents, open alerts, recent traces)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from agents.services import agent_kill, agent_pause
from core.actors import Actor
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


def _card_order(html: str) -> list[str]:
    return re.findall(r'id="card-([a-z0-9-]+)"', html)


def test_stopped_agents_come_first_and_the_refresh_keeps_the_order_the_page_opened_with(
    make_agent, viewer, make_client
):
    for slug in ("alpha-bot", "bravo-bot", "charlie-bot", "delta-bot"):
        make_agent(slug)
    agent_pause(agent=Agent.objects.get(slug="delta-bot"), actor=Actor.system("tests"), reason="r")
    agent_kill(agent=Agent.objects.get(slug="charlie-bot"), actor=Actor.system("tests"), reason="r")
    c = make_client(viewer)
    page = c.get("/").content.decode()
    opened = _card_order(page)
    assert opened[:2] == ["charlie-bot", "delta-bot"]  # killed, then paused, then the rest by name
    assert opened[2:] == ["alpha-bot", "bravo-bot"]

    # Now alpha is killed: on the refresh its card stays where it was, under the pointer.
    agent_kill(agent=Agent.objects.get(slug="alpha-bot"), actor=Actor.system("tests"), reason="r")
    poll = re.search(r'hx-get="(/\?part=fleet[^"]*)"', page).group(1).replace("&amp;", "&")
    refreshed = c.get(poll, headers={"HX-Request": "true"}).content.decode()
    assert _card_order(refreshed) == opened
    make_agent("aardvark-bot")  # registered since the page opened: it comes last, nothing else moves
    assert _card_order(c.get(poll, headers={"HX-Request": "true"}).content.decode()) == [*opened, "aardvark-bot"]
    # A fresh visit sorts again: the two killed agents first.
    assert _card_order(c.get("/").content.decode())[:3] == ["alpha-bot", "charlie-bot", "delta-bot"]
