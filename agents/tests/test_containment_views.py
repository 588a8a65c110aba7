"""The agent page's ladder, rollback and blocks: shown, one click each, without JavaScript too."""

import pytest

from agents.models import Agent, AuditEntry

XSS = "<script>alert('x')</script>"


@pytest.fixture
def agent(make_agent):
    return make_agent("helpdesk")


def test_the_page_shows_the_ladder_with_the_current_level_and_step_buttons(agent, responder, make_client):
    body = make_client(responder).get("/agents/helpdesk/").content.decode()
    assert "Fallback ladder" in body
    assert "Step down to restricted" in body and "Back up to" not in body
    assert "Roll back to last known good" in body and "Nothing blocked." in body
    assert "Edit the ladder (admin)" not in body


def test_step_down_and_back_up_without_javascript(agent, responder, make_client):
    client = make_client(responder)
    response = client.post("/agents/helpdesk/degrade", {"level": "restricted", "reason": "wrong tools"}, follow=True)
    assert "helpdesk now runs at level restricted" in response.content.decode()
    assert Agent.objects.get(pk=agent.pk).level == "restricted"
    assert "Back up to full" in response.content.decode()
    htmx = client.post("/agents/helpdesk/degrade", {"level": "full"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and "fb:gate-changed" in htmx["HX-Trigger"]
    assert Agent.objects.get(pk=agent.pk).level == "full"


def test_unknown_level_and_viewers_write_nothing(agent, responder, viewer, make_client):
    bad = make_client(responder).post("/agents/helpdesk/degrade", {"level": "turbo"}, headers={"HX-Request": "true"})
    assert bad.status_code == 204 and "fb:error" in bad["HX-Trigger"]
    assert make_client(viewer).post("/agents/helpdesk/degrade", {"level": "static"}).status_code == 403
    assert not AuditEntry.objects.filter(action="degrade").exists()


def test_admin_edits_the_ladder(agent, admin_user, responder, make_client):
    ladder = '[{"name": "full", "description": "all"}, {"name": "faq", "description": "' + XSS.replace('"', "'") + '"}]'
    assert make_client(responder).post("/agents/helpdesk/levels", {"fallback_levels": ladder}).status_code == 403
    client = make_client(admin_user)
    bad = client.post("/agents/helpdesk/levels", {"fallback_levels": "not json"}, follow=True)
    assert "not JSON" in bad.content.decode()
    client.post("/agents/helpdesk/levels", {"fallback_levels": ladder})
    assert Agent.objects.get(pk=agent.pk).level_names == ["full", "faq"]
    body = client.get("/agents/helpdesk/").content.decode()
    assert "Edit the ladder (admin)" in body and XSS not in body and "&lt;script&gt;" in body


def test_block_listed_with_expiry_and_unblocked(agent, responder, make_client):
    client = make_client(responder)
    client.post("/agents/helpdesk/block", {"kind": "user", "value": XSS, "ttl_seconds": "600"})
    body = client.get("/agents/helpdesk/").content.decode()
    assert "&lt;script&gt;" in body and XSS not in body and "<time" in body
    bad = client.post("/agents/helpdesk/block", {"kind": "user", "value": "u", "ttl_seconds": "soon"}, follow=True)
    assert "ttl_seconds" in bad.content.decode() or "whole number" in bad.content.decode()
    client.post("/agents/helpdesk/unblock", {"kind": "user", "value": XSS})
    assert Agent.objects.get(pk=agent.pk).blocks == []
