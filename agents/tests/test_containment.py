"""Issue 15's gate fields: the fallback ladder (level), rollback (pinned) and blocks (blocked).

Services: one audit row per change, published and signed; bad input names the field and writes
nothing. API: responders act, viewers and agent keys are refused, 400s name the field."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from agents import containment
from agents.changes import GateConflict
from agents.gate import KEY, gate_document
from agents.keys.services import api_key_create
from agents.models import Agent, AuditAction, AuditEntry, FleetGate
from agents.signing import document_verify
from core import clock
from core.actors import Actor


@pytest.fixture
def publish(django_capture_on_commit_callbacks):
    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run


@pytest.fixture
def agent(make_agent):
    return make_agent("helpdesk")


def stored(redis_client, slug="helpdesk"):
    raw = redis_client.get(KEY.format(slug=slug))
    return json.loads(raw) if raw else None


def changes():
    return AuditEntry.objects.filter(
        action__in=["degrade", "rollback", "unpin", "block", "unblock", "settings"]
    ).count()


# --- services ------------------------------------------------------------------------------------


def test_new_agents_run_at_full_on_the_default_ladder(agent):
    doc = gate_document(agent, FleetGate.load())
    assert doc["level"] == "full"
    assert doc["levels"] == ["full", "restricted", "retrieval", "keyword", "static"]
    assert doc["pinned"] is None
    assert doc["blocked"] == {"sessions": [], "users": [], "tenants": []}


def test_degrade_steps_down_and_back_up_audited_and_published(agent, responder, redis_client, publish):
    version = agent.gate_version
    entry = publish(
        containment.agent_degrade, agent=agent, level="retrieval", actor=Actor.person(responder), reason="bad answers"
    )
    assert entry.action == AuditAction.DEGRADE
    assert (entry.before["level"], entry.after["level"], entry.reason) == ("full", "retrieval", "bad answers")
    doc = stored(redis_client)
    assert doc["level"] == "retrieval" and document_verify(doc)
    assert doc["version"] == version + 1 + FleetGate.load().version
    publish(containment.agent_degrade, agent=agent, level="full", actor=Actor.person(responder), reason="fixed")
    assert stored(redis_client)["level"] == "full"
    assert AuditEntry.objects.filter(agent=agent, action="degrade").count() == 2
    # already there: nothing written
    assert containment.agent_degrade(agent=agent, level="full", actor=Actor.person(responder)) is None


def test_unknown_level_names_the_field_and_writes_nothing(agent, responder):
    version = agent.gate_version
    with pytest.raises(ValidationError) as exc:
        containment.agent_degrade(agent=agent, level="turbo", actor=Actor.person(responder))
    assert "level" in exc.value.message_dict
    agent.refresh_from_db()
    assert (agent.level, agent.gate_version, changes()) == ("full", version, 0)


def test_step_down_walks_the_ladder_and_stops_at_the_bottom(agent, responder):
    seen = []
    while (entry := containment.agent_degrade_step(agent=agent, actor=Actor.person(responder))) is not None:
        seen.append(entry.after["level"])
    assert seen == ["restricted", "retrieval", "keyword", "static"]


def test_an_agent_key_cannot_degrade_pin_or_block(agent):
    key_actor = Actor.agent_key(agent.slug)
    with pytest.raises(PermissionDenied):
        containment.agent_degrade(agent=agent, level="static", actor=key_actor)
    with pytest.raises(PermissionDenied):
        containment.agent_block(agent=agent, kind="session", value="s1", ttl_seconds=60, actor=key_actor)
    assert changes() == 0


def test_ladder_edit_validates_and_keeps_the_current_level(agent, admin_user):
    actor = Actor.person(admin_user)
    with pytest.raises(ValidationError) as exc:
        containment.agent_levels_set(agent=agent, levels=[{"name": "static"}], actor=actor)
    assert "fallback_levels" in exc.value.message_dict
    with pytest.raises(ValidationError):
        containment.agent_levels_set(agent=agent, levels=[{"name": "full"}, {"name": "full"}], actor=actor)
    with pytest.raises(ValidationError):
        containment.agent_levels_set(agent=agent, levels=[{"name": "Full Power!"}], actor=actor)
    assert changes() == 0
    containment.agent_levels_set(
        agent=agent, levels=[{"name": "full", "description": "all"}, {"name": "faq", "description": "FAQ"}], actor=actor
    )
    assert gate_document(agent, FleetGate.load())["levels"] == ["full", "faq"]


def test_rollback_pins_and_unpin_lifts(agent, responder, redis_client, publish):
    actor = Actor.person(responder)
    with pytest.raises(ValidationError) as exc:
        containment.agent_rollback(agent=agent, prompt_version="p1", model_version="m1", actor=actor, reason="")
    assert "reason" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        containment.agent_rollback(agent=agent, prompt_version="", model_version="m1", actor=actor, reason="r")
    assert "prompt_version" in exc.value.message_dict
    assert changes() == 0
    entry = publish(
        containment.agent_rollback, agent=agent, prompt_version="p1", model_version="m1", actor=actor, reason="bad p2"
    )
    assert entry.after == {"pinned": {"prompt_version": "p1", "model_version": "m1"}}
    assert stored(redis_client)["pinned"] == {"prompt_version": "p1", "model_version": "m1"}
    with pytest.raises(GateConflict):
        containment.agent_rollback(agent=agent, prompt_version="p1", model_version="m1", actor=actor, reason="again")
    publish(containment.agent_unpin, agent=agent, actor=actor, reason="p3 is out")
    assert stored(redis_client)["pinned"] is None
    with pytest.raises(GateConflict):
        containment.agent_unpin(agent=agent, actor=actor)


def test_block_carries_an_expiry_and_expired_blocks_leave_the_document(agent, responder, redis_client, publish):
    actor = Actor.person(responder)
    publish(containment.agent_block, agent=agent, kind="session", value="s-1", ttl_seconds=60, actor=actor, reason="x")
    publish(containment.agent_block, agent=agent, kind="tenant", value="acme", ttl_seconds=3600, actor=actor)
    blocked = stored(redis_client)["blocked"]
    assert [e["id"] for e in blocked["sessions"]] == ["s-1"]
    assert [e["id"] for e in blocked["tenants"]] == ["acme"]
    assert AuditEntry.objects.filter(agent=agent, action="block").count() == 2
    with clock.at(timezone.now() + timedelta(seconds=120)):
        later = gate_document(Agent.objects.get(pk=agent.pk), FleetGate.load())["blocked"]
    assert later["sessions"] == [] and [e["id"] for e in later["tenants"]] == ["acme"]
    publish(containment.agent_unblock, agent=agent, kind="tenant", value="acme", actor=actor)
    assert stored(redis_client)["blocked"]["tenants"] == []
    with pytest.raises(GateConflict):
        containment.agent_unblock(agent=agent, kind="tenant", value="acme", actor=actor)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "session", "value": "", "ttl_seconds": 60}, "session"),
        ({"kind": "device", "value": "d", "ttl_seconds": 60}, "kind"),
        ({"kind": "user", "value": "u", "ttl_seconds": 0}, "ttl_seconds"),
        ({"kind": "user", "value": "u", "ttl_seconds": 10**9}, "ttl_seconds"),
    ],
)
def test_bad_block_names_the_field_and_writes_nothing(agent, responder, kwargs, field):
    with pytest.raises(ValidationError) as exc:
        containment.agent_block(agent=agent, actor=Actor.person(responder), **kwargs)
    assert field in exc.value.message_dict
    agent.refresh_from_db()
    assert agent.blocks == [] and changes() == 0


# --- API -----------------------------------------------------------------------------------------


def api(url, *, user=None, key=None, body=None):
    client = Client()
    headers = {}
    if user is not None:
        client.force_login(user)
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client.post(url, data=json.dumps(body or {}), content_type="application/json", **headers)


def test_api_degrade_by_a_responder_answers_the_signed_gate(agent, responder):
    response = api("/api/v1/agents/helpdesk/degrade", user=responder, body={"level": "static", "reason": "r"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["level"] == "static" and document_verify(body)
    assert AuditEntry.objects.get(agent=agent, action="degrade").actor == responder


def test_api_degrade_unknown_level_is_a_400_naming_level(agent, responder):
    response = api("/api/v1/agents/helpdesk/degrade", user=responder, body={"level": "turbo"})
    assert response.status_code == 400
    assert "level" in response.json()["detail"]
    missing = api("/api/v1/agents/helpdesk/degrade", user=responder, body={"reason": "r"})
    assert missing.status_code == 400 and "level" in missing.json()["detail"]
    assert changes() == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("degrade", {"level": "static"}),
        ("rollback", {"reason": "r"}),
        ("unpin", {}),
        ("block", {"session": "s", "ttl_seconds": 60}),
        ("unblock", {"session": "s"}),
    ],
)
def test_api_refuses_agent_keys_and_viewers(agent, viewer, path, body):
    key = api_key_create(agent=agent, scopes=["ingest", "gate"])[1]
    assert api(f"/api/v1/agents/helpdesk/{path}", key=key, body=body).status_code == 403
    assert api(f"/api/v1/agents/helpdesk/{path}", user=viewer, body=body).status_code == 403
    assert changes() == 0


def test_api_rollback_without_history_is_a_409(agent, responder):
    response = api("/api/v1/agents/helpdesk/rollback", user=responder, body={"reason": "r"})
    assert response.status_code == 409
    assert changes() == 0


def test_api_block_and_unblock(agent, responder):
    bad = api("/api/v1/agents/helpdesk/block", user=responder, body={"session": "s-9"})
    assert bad.status_code == 400 and "ttl_seconds" in bad.json()["detail"]
    two = api("/api/v1/agents/helpdesk/block", user=responder, body={"session": "s", "user": "u", "ttl_seconds": 5})
    assert two.status_code == 400 and "session" in two.json()["detail"]
    assert changes() == 0
    ok = api("/api/v1/agents/helpdesk/block", user=responder, body={"user": "u-1", "ttl_seconds": 300, "reason": "r"})
    assert ok.status_code == 200
    assert [e["id"] for e in ok.json()["blocked"]["users"]] == ["u-1"]
    lifted = api("/api/v1/agents/helpdesk/unblock", user=responder, body={"user": "u-1"})
    assert lifted.status_code == 200 and lifted.json()["blocked"]["users"] == []
    assert api("/api/v1/agents/helpdesk/unblock", user=responder, body={"user": "u-1"}).status_code == 409


def test_an_agent_key_reads_the_new_fields_in_its_signed_gate(agent, responder):
    key = api_key_create(agent=agent, scopes=["gate"])[1]
    containment.agent_block(agent=agent, kind="session", value="s-1", ttl_seconds=60, actor=Actor.person(responder))
    containment.agent_degrade(agent=agent, level="keyword", actor=Actor.person(responder))
    body = Client().get("/api/v1/agents/helpdesk/gate", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert (body["level"], body["pinned"]) == ("keyword", None)
    assert [e["id"] for e in body["blocked"]["sessions"]] == ["s-1"]
    assert document_verify(body)
    tampered = {**body, "level": "full"}
    assert not document_verify(tampered)  # the new fields are inside what is signed
