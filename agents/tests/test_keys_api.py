"""The API keys API: the same rules as the /keys/ page. Viewers list; a responder makes and revokes their own
key; an admin makes anyone's and agents' keys and revokes any; the raw key is answered once."""

import pytest

from agents.keys.services import api_key_create
from agents.models import ApiKey, AuditAction, AuditEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/keys"


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def test_viewer_lists_keys_without_values(client, viewer, responder):
    key, raw = api_key_create(user=responder, scopes=["api"], name="laptop")
    client.force_login(viewer)
    body = client.get(URL).json()
    assert [(k["lookup"], k["owner"], k["owner_kind"], k["name"]) for k in body] == [
        (key.lookup, responder.username, "person", "laptop")
    ]
    assert raw not in str(body) and key.key_hash not in str(body)


def test_responder_makes_their_own_key_which_works_once_shown(client, responder):
    client.force_login(responder)
    response = post(client, URL, {"name": "cli"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"]["owner"] == responder.username and body["key"]["scopes"] == ["api"]
    assert body["env"] == f"FIREBREAK_API_KEY={body['raw']}"
    client.logout()
    assert client.get("/api/v1/agents", HTTP_AUTHORIZATION=f"Bearer {body['raw']}").status_code == 200
    assert body["raw"] not in str(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {body['raw']}").json())


def test_responder_cannot_make_keys_for_others_or_agents(client, responder, admin_user, make_agent):
    make_agent("support-bot")
    client.force_login(responder)
    assert post(client, URL, {"username": admin_user.username}).status_code == 403
    assert post(client, URL, {"kind": "agent", "agent": "support-bot"}).status_code == 403
    assert not ApiKey.objects.exists()


def test_viewer_cannot_make_a_key(client, viewer):
    client.force_login(viewer)
    assert post(client, URL, {}).status_code == 403
    assert not ApiKey.objects.exists()


def test_admin_makes_an_agent_key_and_a_key_for_someone(client, admin_user, responder, make_agent):
    make_agent("support-bot")
    client.force_login(admin_user)
    agent_key = post(client, URL, {"kind": "agent", "agent": "support-bot", "scopes": ["gate"]}).json()
    assert agent_key["key"]["owner_kind"] == "agent" and agent_key["key"]["scopes"] == ["gate"]
    assert "FIREBREAK_GATE_PUBLIC_KEY=" in agent_key["env"]
    person_key = post(client, URL, {"username": responder.username}).json()
    assert person_key["key"]["owner"] == responder.username


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "robot"}, "kind"),
        ({"kind": "agent"}, "agent"),
        ({"kind": "agent", "agent": "ghost"}, "agent"),
        ({"kind": "agent", "agent": "support-bot", "scopes": ["api"]}, "scopes"),
        ({"kind": "agent", "agent": "support-bot", "scopes": []}, "scopes"),
        ({"username": "nobody"}, "username"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_makes_nothing(client, admin_user, make_agent, body, field):
    make_agent("support-bot")
    client.force_login(admin_user)
    response = post(client, URL, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert not ApiKey.objects.exists()


def test_responder_revokes_their_own_key_with_a_reason_and_twice_is_409(client, responder):
    key, raw = api_key_create(user=responder, scopes=["api"])
    client.force_login(responder)
    missing = post(client, f"{URL}/{key.lookup}/revoke", {})
    assert missing.status_code == 400 and "reason" in missing.json()["detail"]
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    response = post(client, f"{URL}/{key.lookup}/revoke", {"reason": "laptop lost"})
    assert response.status_code == 200 and response.json()["revoked_by"] == responder.username
    audit = AuditEntry.objects.get(action=AuditAction.KEY_REVOKE)
    assert audit.reason == "laptop lost"
    assert post(client, f"{URL}/{key.lookup}/revoke", {"reason": "again"}).status_code == 409
    client.logout()
    assert client.get("/api/v1/agents", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_only_an_admin_revokes_someone_else_s_key(client, responder, make_user, admin_user):
    other = make_user("responder")
    key, _ = api_key_create(user=other, scopes=["api"])
    client.force_login(responder)
    assert post(client, f"{URL}/{key.lookup}/revoke", {"reason": "mine now"}).status_code == 403
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    client.force_login(admin_user)
    assert post(client, f"{URL}/{key.lookup}/revoke", {"reason": "left"}).status_code == 200
    assert post(client, f"{URL}/nosuchkey/revoke", {"reason": "x"}).status_code == 404
