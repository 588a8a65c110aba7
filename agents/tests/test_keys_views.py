"""/keys/: who sees and makes which keys; a key made there works at once and is shown once."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

from agents.keys.services import api_key_create
from agents.models import ApiKey, AuditAction, AuditEntry

KEY = re.compile(r"fbk_[0-9a-f]{12}_[A-Za-z0-9_-]+")


@pytest.fixture
def agent(make_agent):
    return make_agent("refund-agent")


def _gate(raw: str, slug: str = "refund-agent") -> int:
    return Client().get(f"/api/v1/agents/{slug}/gate", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code


def _make_agent_key(client, **extra):
    data = {"kind": "agent", "agent": "refund-agent", "scopes": ["ingest", "gate"], "name": "prod", **extra}
    return client.post("/keys/new", data)


def test_an_agent_key_made_on_the_page_reads_its_gate_and_the_env_lines_are_shown(agent, admin_user, make_client):
    response = _make_agent_key(make_client(admin_user))
    assert response.status_code == 201
    body = response.content.decode()
    raw = KEY.search(body).group(0)
    assert f"FIREBREAK_API_KEY={raw}" in body
    assert "FIREBREAK_GATE_PUBLIC_KEY=" in body
    assert "FIREBREAK_REDIS_URL" not in body
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    assert _gate(raw) == 200
    key = ApiKey.objects.get(agent=agent)
    assert AuditEntry.objects.filter(action=AuditAction.KEY_CREATE, agent=agent, actor=admin_user).exists()
    assert raw not in str(AuditEntry.objects.get(action=AuditAction.KEY_CREATE).after)
    assert key.key_hash != raw


def test_an_agent_key_with_its_own_redis_user_prints_the_redis_url(agent, admin_user, make_client):
    response = _make_agent_key(make_client(admin_user), redis="on")
    assert response.status_code == 201
    assert "FIREBREAK_REDIS_URL=" in response.content.decode()
    assert ApiKey.objects.get(agent=agent).redis_access


def test_the_raw_key_is_never_shown_twice(agent, admin_user, make_client):
    client = make_client(admin_user)
    raw = KEY.search(_make_agent_key(client).content.decode()).group(0)
    listing = client.get("/keys/").content.decode()
    lookup = ApiKey.objects.get(agent=agent).lookup
    assert f"fbk_{lookup}" in listing
    assert raw not in listing
    assert KEY.search(listing) is None
    assert raw not in client.get(f"/admin/agents/apikey/{ApiKey.objects.get(agent=agent).pk}/change/").content.decode()


def test_a_revoked_key_answers_401_and_the_reason_is_audited(agent, admin_user, make_client):
    client = make_client(admin_user)
    raw = KEY.search(_make_agent_key(client).content.decode()).group(0)
    key = ApiKey.objects.get(agent=agent)
    response = client.post(f"/keys/{key.lookup}/revoke", {"reason": "leaked in a log"})
    assert response.status_code == 302
    assert _gate(raw) == 401
    entry = AuditEntry.objects.get(action=AuditAction.KEY_REVOKE)
    assert entry.reason == "leaked in a log"
    assert entry.actor == admin_user
    assert "revoked" in client.get("/keys/").content.decode()


def test_revoking_needs_a_reason(agent, admin_user, make_client):
    client = make_client(admin_user)
    _make_agent_key(client)
    key = ApiKey.objects.get(agent=agent)
    response = client.post(f"/keys/{key.lookup}/revoke", {"reason": ""})
    assert response.status_code == 400
    assert "not revoked: say why" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_viewer_sees_the_list_but_cannot_make_or_revoke_a_key(agent, viewer, admin_user, make_client):
    _make_agent_key(make_client(admin_user))
    client = make_client(viewer)
    page = client.get("/keys/")
    assert page.status_code == 200
    assert "refund-agent" in page.content.decode()
    assert "Make a key" not in page.content.decode()
    assert client.post("/keys/new", {"kind": "person"}).status_code == 403
    assert _make_agent_key(client).status_code == 403
    key = ApiKey.objects.get(agent=agent)
    assert client.post(f"/keys/{key.lookup}/revoke", {"reason": "x"}).status_code == 403
    assert ApiKey.objects.count() == 1


def test_a_responder_makes_a_key_for_themself_that_acts_as_them(responder, make_client):
    response = make_client(responder).post("/keys/new", {"kind": "person", "name": "laptop"})
    assert response.status_code == 201
    raw = KEY.search(response.content.decode()).group(0)
    key = ApiKey.objects.get(user=responder)
    assert key.scopes == ["api"]
    assert "FIREBREAK_GATE_PUBLIC_KEY" not in response.content.decode()
    assert Client().get("/api/v1/agents", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_a_responder_cannot_make_keys_for_others_or_for_agents(agent, responder, viewer, make_client):
    client = make_client(responder)
    assert client.post("/keys/new", {"kind": "person", "username": viewer.username}).status_code == 403
    assert _make_agent_key(client).status_code == 403
    assert ApiKey.objects.count() == 0


def test_a_responder_revokes_their_own_key_but_not_someone_elses(agent, responder, admin_user, make_client):
    _make_agent_key(make_client(admin_user))
    client = make_client(responder)
    client.post("/keys/new", {"kind": "person"})
    own = ApiKey.objects.get(user=responder)
    other = ApiKey.objects.get(agent=agent)
    assert client.post(f"/keys/{other.lookup}/revoke", {"reason": "x"}).status_code == 403
    assert client.post(f"/keys/{own.lookup}/revoke", {"reason": "laptop lost"}).status_code == 302
    own.refresh_from_db()
    other.refresh_from_db()
    assert own.revoked_at is not None and other.revoked_at is None


def test_an_admin_makes_a_key_for_another_person(admin_user, viewer, make_client):
    response = make_client(admin_user).post("/keys/new", {"kind": "person", "username": viewer.username})
    assert response.status_code == 201
    assert ApiKey.objects.get().user == viewer


def test_bad_input_makes_no_key(agent, admin_user, make_client):
    client = make_client(admin_user)
    assert _make_agent_key(client, agent="no-such-agent").status_code == 400
    assert _make_agent_key(client, scopes=["api"]).status_code == 400
    assert client.post("/keys/new", {"kind": "person", "username": "nobody"}).status_code == 400
    assert ApiKey.objects.count() == 0


def test_the_admin_cannot_add_a_key_and_points_to_the_keys_page(admin_user, make_client):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client = make_client(admin_user)
    assert client.get("/admin/agents/apikey/add/").status_code == 403
    assert 'href="/keys/"' in client.get("/admin/agents/apikey/").content.decode()


def test_revokeapikey_keeps_its_reason_in_the_audit_row(agent):
    key, _ = api_key_create(agent=agent, scopes=["gate"])
    call_command("revokeapikey", key.lookup, "--reason", "rotated after the drill")
    entry = AuditEntry.objects.get(action=AuditAction.KEY_REVOKE)
    assert (entry.reason, entry.actor_label, entry.before["lookup"]) == (
        "rotated after the drill",
        "revokeapikey",
        key.lookup,
    )


def test_reloading_the_page_that_showed_a_key_makes_no_second_key(agent, admin_user, make_client):
    client = make_client(admin_user)
    token = re.search(r'name="form_token" value="([^"]+)"', client.get("/keys/").content.decode()).group(1)
    first = _make_agent_key(client, form_token=token)
    assert first.status_code == 201
    raw = KEY.search(first.content.decode()).group(0)
    again = _make_agent_key(client, form_token=token)  # the browser's "resend the form?"
    assert again.status_code == 409
    body = again.content.decode()
    lookup = ApiKey.objects.get(agent=agent).lookup  # still exactly one key
    assert "already sent" in body and f"fbk_{lookup}" in body
    assert raw not in body and KEY.search(body) is None  # the value is not shown a second time
    # a fresh form (a new token) makes a new key as asked
    fresh = re.search(r'name="form_token" value="([^"]+)"', body).group(1)
    assert fresh != token
    assert _make_agent_key(client, form_token=fresh).status_code == 201
    assert ApiKey.objects.filter(agent=agent).count() == 2
