"""The gate API of the public contract: reads with ETag, actions by role, agent keys never act."""

import json
import time

import pytest
from django.test import Client

from agents.keys.services import api_key_create
from agents.models import Agent, AuditEntry, FleetGate
from agents.services import agent_gate_settings_set
from agents.signing import document_verify, public_key_text
from core.actors import Actor


@pytest.fixture
def agent(make_agent):
    return make_agent("refund-agent", allowed_tools=["search", "refund"], high_risk_tools=["refund"])


@pytest.fixture
def agent_key(agent):
    return api_key_create(agent=agent, scopes=["ingest", "gate"])[1]


def api(method, url, *, key=None, user=None, body=None, **headers):
    client = Client()
    if user is not None:
        client.force_login(user)
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if method == "get":
        return client.get(url, **headers)
    return client.post(url, data=json.dumps(body or {}), content_type="application/json", **headers)


def audit_count():
    return AuditEntry.objects.exclude(action__in=["register", "key_create", "key_revoke"]).count()  # gate changes


# --- reading the gate --------------------------------------------------------------------------


def test_agent_key_reads_its_gate_with_an_etag(agent, agent_key):
    response = api("get", "/api/v1/agents/refund-agent/gate", key=agent_key)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("agent", "state", "reason", "disabled_tools")} == {
        "agent": "refund-agent",
        "state": "active",
        "reason": "",
        "disabled_tools": [],
    }
    assert body["budget"]["session_cost_cap"] == 5.0
    assert document_verify(body, public_key_text()) and body["issued_at"] > 0
    time.sleep(0.002)  # signed again on the next read, with the same content: the same ETag, a 304
    again = api("get", "/api/v1/agents/refund-agent/gate", key=agent_key, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert again.content == b""


def test_etag_changes_when_the_gate_changes(agent, agent_key, responder):
    first = api("get", "/api/v1/agents/refund-agent/gate", key=agent_key)
    api("post", "/api/v1/agents/refund-agent/kill", user=responder, body={"reason": "loop"})
    second = api("get", "/api/v1/agents/refund-agent/gate", key=agent_key, HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 200
    assert second.json()["state"] == "killed"
    assert second["ETag"] != first["ETag"]


def test_an_admin_edit_of_the_gate_changes_the_etag(agent, agent_key, admin_user):
    first = api("get", "/api/v1/agents/refund-agent/gate", key=agent_key)
    agent_gate_settings_set(
        agent=agent, actor=Actor.person(admin_user), reason="new copy", fallback_message="Back soon."
    )
    second = api("get", "/api/v1/agents/refund-agent/gate", key=agent_key, HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 200 and second.json()["fallback_message"] == "Back soon."


def test_an_agent_key_cannot_read_another_agents_gate(agent, agent_key, make_agent):
    make_agent("other")
    response = api("get", "/api/v1/agents/other/gate", key=agent_key)
    assert response.status_code == 403


def test_gate_read_errors(agent, viewer):
    assert api("get", "/api/v1/agents/refund-agent/gate").status_code == 401
    assert api("get", "/api/v1/agents/refund-agent/gate", key="fbk_bad").status_code == 401
    assert api("get", "/api/v1/agents/nobody/gate", user=viewer).status_code == 404
    ingest_only = api_key_create(agent=agent, scopes=["ingest"])[1]
    assert api("get", "/api/v1/agents/refund-agent/gate", key=ingest_only).status_code == 403
    assert api("get", "/api/v1/agents/refund-agent/gate", user=viewer).status_code == 200


# --- acting on it ------------------------------------------------------------------------------


def test_responder_kills_over_the_api(agent, responder):
    response = api("post", "/api/v1/agents/refund-agent/kill", user=responder, body={"reason": "loop", "incident": 4})
    assert response.status_code == 200
    assert response.json()["state"] == "killed"
    entry = AuditEntry.objects.get(action="kill")
    assert (entry.actor, entry.reason, entry.incident_number) == (responder, "loop", 4)


def test_budget_freeze_and_unfreeze_over_the_api_keep_the_caps(make_agent, responder):
    agent = make_agent("spender", session_cost_cap=5, daily_cost_cap=40)
    response = api("post", "/api/v1/agents/spender/budget/freeze", user=responder, body={"reason": "spiral"})
    assert response.status_code == 200
    budget = response.json()["budget"]
    assert budget["frozen"] is True and budget["frozen_at"] and budget["session_cost_cap"] == 5.0
    assert budget["daily_cost_cap"] == 40.0

    before = Agent.objects.get(pk=agent.pk).gate_version
    response = api("post", "/api/v1/agents/spender/budget/unfreeze", user=responder, body={"reason": ""})
    assert response.status_code == 400 and "reason" in json.dumps(response.json())
    assert Agent.objects.get(pk=agent.pk).gate_version == before  # nothing written

    response = api("post", "/api/v1/agents/spender/budget/unfreeze", user=responder, body={"reason": "fixed"})
    assert response.status_code == 200
    assert response.json()["budget"] == {
        "frozen": False,
        "frozen_at": None,
        "session_cost_cap": 5.0,
        "daily_cost_cap": 40.0,
        "session_token_cap": None,
        "session_step_cap": None,
    }
    listed = api("get", "/api/v1/agents", user=responder).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["budget_frozen_at"] for row in rows if row["slug"] == "spender"] == [None]


def test_a_persons_api_key_acts_as_that_person(agent, responder):
    key = api_key_create(user=responder, scopes=["api"])[1]
    response = api("post", "/api/v1/agents/refund-agent/pause", key=key, body={"reason": "looks odd"})
    assert response.status_code == 200
    assert AuditEntry.objects.get(action="pause").actor == responder


ACTIONS = [
    ("/api/v1/agents/refund-agent/kill", {}),
    ("/api/v1/agents/refund-agent/pause", {}),
    ("/api/v1/agents/refund-agent/resume", {"reason": "all good"}),
    ("/api/v1/agents/refund-agent/tools/refund/disable", {}),
    ("/api/v1/agents/refund-agent/tools/refund/enable", {}),
    ("/api/v1/agents/refund-agent/budget/freeze", {}),
    ("/api/v1/fleet/stop", {"reason": "x"}),
    ("/api/v1/fleet/resume", {"reason": "x"}),
    ("/api/v1/fleet/change-freeze", {"reason": "x"}),
]


@pytest.mark.parametrize(("url", "body"), ACTIONS)
def test_an_agent_key_can_never_act_on_a_gate(agent, agent_key, url, body):
    before = Agent.objects.get(pk=agent.pk).gate_version
    response = api("post", url, key=agent_key, body=body)
    assert response.status_code == 403
    assert "agent's key" in response.json()["error"]
    assert audit_count() == 0
    assert Agent.objects.get(pk=agent.pk).gate_version == before


def test_a_killed_agent_cannot_resume_itself(agent, agent_key, responder):
    api("post", "/api/v1/agents/refund-agent/kill", user=responder)
    response = api("post", "/api/v1/agents/refund-agent/resume", key=agent_key, body={"reason": "I am fine now"})
    assert response.status_code == 403
    assert Agent.objects.get(pk=agent.pk).state == "killed"
    assert not AuditEntry.objects.filter(action="resume").exists()


@pytest.mark.parametrize(("url", "body"), ACTIONS)
def test_a_viewer_cannot_act(agent, viewer, url, body):
    response = api("post", url, user=viewer, body=body)
    assert response.status_code == 403
    assert audit_count() == 0


def test_anonymous_gets_401_and_nothing_is_written(agent):
    assert api("post", "/api/v1/agents/refund-agent/kill").status_code == 401
    assert audit_count() == 0


def test_resume_without_a_reason_is_400(agent, responder):
    api("post", "/api/v1/agents/refund-agent/pause", user=responder)
    response = api("post", "/api/v1/agents/refund-agent/resume", user=responder, body={})
    assert response.status_code == 400
    assert "reason" in response.json()["detail"]
    assert Agent.objects.get(pk=agent.pk).state == "paused"


def test_resume_of_an_active_agent_is_409(agent, responder):
    response = api("post", "/api/v1/agents/refund-agent/resume", user=responder, body={"reason": "x"})
    assert response.status_code == 409
    assert audit_count() == 0


def test_unknown_agent_is_404(responder):
    assert api("post", "/api/v1/agents/ghost/kill", user=responder).status_code == 404


def test_bad_body_is_400(agent, responder):
    response = api("post", "/api/v1/agents/refund-agent/kill", user=responder, body={"incident": "four"})
    assert response.status_code == 400
    assert "incident" in response.json()["detail"]
    assert Agent.objects.get(pk=agent.pk).state == "active"


def test_tool_disable_over_the_api(agent, responder):
    response = api("post", "/api/v1/agents/refund-agent/tools/refund/disable", user=responder, body={"reason": "x"})
    assert response.status_code == 200
    assert response.json()["disabled_tools"] == ["refund"]
    bad = api("post", "/api/v1/agents/refund-agent/tools/a%20b/disable", user=responder)
    assert bad.status_code == 400


def test_fleet_stop_by_a_responder_resume_by_an_admin_only(agent, responder, admin_user, viewer):
    response = api("post", "/api/v1/fleet/stop", user=responder, body={"reason": "stop everything"})
    assert response.status_code == 200
    assert response.json()["stopped"] is True
    assert api("get", "/api/v1/agents/refund-agent/gate", user=viewer).json()["state"] == "killed"
    assert api("post", "/api/v1/fleet/resume", user=responder, body={"reason": "ok"}).status_code == 403
    assert FleetGate.load().stopped
    assert api("post", "/api/v1/fleet/resume", user=admin_user, body={"reason": "ok"}).status_code == 200
    assert api("get", "/api/v1/fleet", user=viewer).json()["stopped"] is False


def test_fleet_stop_needs_a_reason(responder):
    response = api("post", "/api/v1/fleet/stop", user=responder, body={})
    assert response.status_code == 400
    assert not FleetGate.load().stopped


def test_change_freeze_is_readable_by_pipelines(responder, viewer):
    assert api("post", "/api/v1/fleet/change-freeze", user=responder, body={"reason": "INC-3"}).status_code == 200
    body = api("get", "/api/v1/fleet", user=viewer).json()
    assert body["change_freeze"] is True
    assert body["change_freeze_reason"] == "INC-3"
    assert api("post", "/api/v1/fleet/change-unfreeze", user=responder, body={"reason": "done"}).status_code == 200
    assert api("get", "/api/v1/fleet", user=viewer).json()["change_freeze"] is False


# --- registry ----------------------------------------------------------------------------------


def test_admin_registers_an_agent_and_everyone_lists_them(admin_user, viewer):
    body = {"slug": "new-bot", "name": "New bot", "allowed_tools": ["search"], "session_cost_cap": "2.50"}
    response = api("post", "/api/v1/agents", user=admin_user, body=body)
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "active"
    listed = api("get", "/api/v1/agents", user=viewer).json()
    assert [a["slug"] for a in listed] == ["new-bot"]


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "Bad Slug", "name": "x"},
        {"slug": "ok", "name": "x", "allowed_tools": ["a"], "high_risk_tools": ["b"]},
        {"slug": "ok", "name": "x", "session_cost_cap": -1},
        {"slug": "ok"},
    ],
)
def test_bad_registration_is_400_and_writes_nothing(admin_user, body):
    response = api("post", "/api/v1/agents", user=admin_user, body=body)
    assert response.status_code == 400
    assert not Agent.objects.exists()


def test_only_admins_register(responder):
    assert api("post", "/api/v1/agents", user=responder, body={"slug": "x", "name": "x"}).status_code == 403
    assert not Agent.objects.exists()


def test_gate_endpoints_are_in_the_openapi_schema(viewer):
    schema = api("get", "/api/schema/?format=json", user=viewer).json()
    for path in [
        "/api/v1/agents/{slug}/gate",
        "/api/v1/agents/{slug}/kill",
        "/api/v1/agents/{slug}/resume",
        "/api/v1/agents/{slug}/tools/{tool_name}/disable",
        "/api/v1/agents/{slug}/budget/freeze",
        "/api/v1/fleet/stop",
        "/api/v1/fleet/resume",
        "/api/v1/ingest",
    ]:
        assert path in schema["paths"], path
