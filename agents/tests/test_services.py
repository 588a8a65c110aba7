import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from agents.keys.selectors import api_key_cache_clear, api_key_resolve
from agents.keys.services import api_key_create
from agents.models import Agent, ApiKey, AuditEntry
from agents.services import agent_register
from agents.signing import public_key_text
from core.actors import Actor


def test_register_writes_the_agent_and_one_audit_row(db, responder):
    agent = agent_register(slug="refunds", name="Refunds", actor=Actor.person(responder), allowed_tools=["refund"])
    entry = AuditEntry.objects.get(agent=agent)
    assert entry.action == "register"
    assert entry.actor == responder
    assert entry.actor_label == responder.username


def test_register_with_bad_tools_writes_nothing(db):
    with pytest.raises(ValidationError):
        agent_register(
            slug="refunds",
            name="Refunds",
            allowed_tools=["search"],
            high_risk_tools=["refund"],
            actor=Actor.system("tests"),
        )
    assert not Agent.objects.exists()
    assert not AuditEntry.objects.exists()


def test_register_twice_is_refused(make_agent):
    make_agent("dup")
    with pytest.raises(ValidationError):
        agent_register(slug="dup", name="Again", actor=Actor.system("tests"))
    assert Agent.objects.filter(slug="dup").count() == 1


def test_api_key_is_shown_once_and_stored_hashed(make_agent):
    agent = make_agent()
    key, raw = api_key_create(agent=agent, scopes=["ingest", "gate"])
    assert raw.startswith("fbk_")
    assert raw not in key.key_hash
    assert api_key_resolve(raw=raw) == key
    assert api_key_resolve(raw=raw + "x") is None
    assert api_key_resolve(raw="fbk_nothing") is None


def test_agent_key_can_never_hold_the_api_scope(make_agent):
    with pytest.raises(ValidationError):
        api_key_create(agent=make_agent(), scopes=["gate", "api"])
    assert not ApiKey.objects.exists()


def test_revoked_key_does_not_resolve(make_agent):
    from django.utils import timezone

    key, raw = api_key_create(agent=make_agent(), scopes=["gate"])
    assert api_key_resolve(raw=raw) == key
    key.revoked_at = timezone.now()
    key.save()
    api_key_cache_clear()  # what API_KEY_CACHE_SECONDS of waiting does
    assert api_key_resolve(raw=raw) is None


def test_createapikey_registers_a_new_agent_and_prints_a_working_key(db, capsys):
    call_command("createapikey", "--agent", "night-bot", "--scopes", "ingest,gate")
    raw, public_key = capsys.readouterr().out.splitlines()
    assert public_key == f"FIREBREAK_GATE_PUBLIC_KEY={public_key_text()}"
    key = api_key_resolve(raw=raw)
    assert key.agent.slug == "night-bot"
    assert key.scopes == ["gate", "ingest"]


def test_createapikey_for_a_user(db, responder, capsys):
    call_command("createapikey", "--user", responder.username)
    key = api_key_resolve(raw=capsys.readouterr().out.strip())
    assert key.user == responder
    assert key.scopes == ["api"]


def test_createapikey_for_unknown_user_fails_clearly(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("createapikey", "--user", "ghost")
    assert not ApiKey.objects.exists()
