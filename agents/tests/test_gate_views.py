"""The gate in the browser's HTML: one-click kill, reasons, roles, typed fleet confirmation."""

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent, AuditEntry, FleetGate
from agents.services import agent_kill
from core.actors import Actor

XSS = "<script>alert('x')</script>"


@pytest.fixture
def agent(make_agent):
    return make_agent("refund-agent", allowed_tools=["search", "refund"], high_risk_tools=["refund"])


def test_one_click_kill_with_htmx_answers_204_and_triggers_a_refresh(agent, responder, make_client):
    response = make_client(responder).post("/agents/refund-agent/kill", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert "fb:gate-changed" in response["HX-Trigger"]
    assert Agent.objects.get(pk=agent.pk).state == "killed"
    assert AuditEntry.objects.get(action="kill").reason == ""


def test_kill_without_javascript_redirects_back_with_a_message(agent, responder, make_client):
    response = make_client(responder).post("/agents/refund-agent/kill", {"next": "/", "reason": "loop"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "refund-agent killed" in response.content.decode()


def test_the_dashboard_offers_a_reason_after_a_one_click_kill(agent, responder, make_client):
    client = make_client(responder)
    client.post("/agents/refund-agent/kill")
    entry = AuditEntry.objects.get(action="kill")
    card = client.get("/", {"part": "fleet"}, headers={"HX-Request": "true"}).content.decode()
    assert f"/agents/audit/{entry.pk}/reason" in card
    assert "No reason given yet" in card
    client.post(f"/agents/audit/{entry.pk}/reason", {"reason": XSS}, headers={"HX-Request": "true"})
    assert AuditEntry.objects.get(amends=entry).reason == XSS
    card = client.get("/", {"part": "fleet"}, headers={"HX-Request": "true"}).content.decode()
    assert "No reason given yet" not in card
    page = client.get("/agents/refund-agent/").content.decode()
    assert XSS not in page
    assert "&lt;script&gt;" in page


def test_viewer_sees_no_controls_and_cannot_post(agent, viewer, make_client):
    client = make_client(viewer)
    assert "agents/refund-agent/kill" not in client.get("/").content.decode()
    assert client.post("/agents/refund-agent/kill").status_code == 403
    assert client.post("/agents/fleet/stop", {"reason": "x", "confirm": "STOP ALL AGENTS"}).status_code == 403
    assert Agent.objects.get(pk=agent.pk).state == "active"
    assert not AuditEntry.objects.exclude(action="register").exists()


def test_responder_sees_kill_and_pause_on_every_card(agent, responder, make_client):
    html = make_client(responder).get("/").content.decode()
    assert 'action="/agents/refund-agent/kill"' in html
    assert 'action="/agents/refund-agent/pause"' in html


def test_resume_in_the_page_needs_a_reason(agent, responder, make_client):
    client = make_client(responder)
    client.post("/agents/refund-agent/pause")
    response = client.post("/agents/refund-agent/resume", {"reason": ""}, follow=True)
    assert "reason" in response.content.decode()
    assert Agent.objects.get(pk=agent.pk).state == "paused"
    client.post("/agents/refund-agent/resume", {"reason": "verified"})
    assert Agent.objects.get(pk=agent.pk).state == "active"


def test_htmx_errors_come_back_as_an_event(agent, responder, make_client):
    response = make_client(responder).post(
        "/agents/refund-agent/resume", {"reason": "x"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 204
    assert "fb:error" in response["HX-Trigger"]
    assert "already active" in response["HX-Trigger"]


def test_fleet_stop_needs_the_typed_confirmation(agent, responder, make_client):
    client = make_client(responder)
    response = client.post("/agents/fleet/stop", {"reason": "bad day", "confirm": "yes"}, follow=True)
    assert "STOP ALL AGENTS" in response.content.decode()
    assert not FleetGate.load().stopped
    client.post("/agents/fleet/stop", {"reason": "bad day", "confirm": "STOP ALL AGENTS"})
    assert FleetGate.load().stopped


def test_tool_switch_and_budget_freeze_from_the_agent_page(agent, responder, make_client):
    client = make_client(responder)
    page = client.get("/agents/refund-agent/").content.decode()
    assert "/agents/refund-agent/tools/refund/disable" in page
    client.post("/agents/refund-agent/tools/refund/disable")
    assert Agent.objects.get(pk=agent.pk).disabled_tools == ["refund"]
    assert client.post("/agents/refund-agent/tools/refund/explode").status_code == 404
    client.post("/agents/refund-agent/budget/freeze")
    assert Agent.objects.get(pk=agent.pk).budget_frozen


def test_bad_caps_are_refused_with_a_message(agent, responder, make_client):
    response = make_client(responder).post(
        "/agents/refund-agent/budget/caps", {"session_cost_cap": "lots"}, follow=True
    )
    assert "session_cost_cap" in response.content.decode()
    assert str(Agent.objects.get(pk=agent.pk).session_cost_cap) == "5.0000"


def test_unsafe_next_is_ignored(agent, responder, make_client):
    response = make_client(responder).post("/agents/refund-agent/pause", {"next": "https://evil.example/"})
    assert response["Location"] == "/agents/refund-agent/"


def test_kill_agent_command(agent, capsys):
    call_command("kill_agent", "refund-agent", "--reason", "from the terminal")
    assert "refund-agent killed" in capsys.readouterr().out
    entry = AuditEntry.objects.get(action="kill")
    assert entry.actor_label.startswith("cli:")
    assert entry.reason == "from the terminal"
    with pytest.raises(CommandError, match="no agent 'ghost'"):
        call_command("kill_agent", "ghost")


def test_a_kill_with_no_reason_says_so_in_the_audit_history(agent, responder, make_client):
    agent_kill(agent=agent, actor=Actor.person(responder))
    page = make_client(responder).get("/agents/refund-agent/").content.decode()
    assert "no reason given yet" in page.lower()
    assert "No reason given yet for this change (killed):" in page  # not "for this killed"


def test_agent_list_shows_fleet_controls_to_responders_once(agent, responder, viewer, make_client):
    html = make_client(responder).get("/agents/").content.decode()
    assert "<title>Agents · Firebreak</title>" in html
    assert html.count('id="fleet-controls"') == 1
    assert 'id="fleet-controls"' not in make_client(viewer).get("/agents/").content.decode()


def test_a_kill_from_an_incident_page_names_the_incident(agent, responder, make_client):
    make_client(responder).post("/agents/refund-agent/kill", {"incident": "12", "next": "/incidents/12/"})
    assert AuditEntry.objects.get(action="kill").incident_number == 12
    make_client(responder).post("/agents/refund-agent/resume", {"reason": "ok"})
    make_client(responder).post("/agents/refund-agent/pause", {"incident": "not-a-number"})
    assert AuditEntry.objects.get(action="pause").incident_number is None


def test_agent_page_offers_declaring_an_incident_prefilled(agent, responder, make_client):
    client = make_client(responder)
    assert "/incidents/new/?agent=refund-agent" in client.get("/agents/refund-agent/").content.decode()
    form = client.get("/incidents/new/?agent=refund-agent")
    assert form.status_code == 200
    assert "refund-agent" in form.content.decode()
