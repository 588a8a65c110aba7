import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from agents.models import Agent, ApiKey, AuditEntry, FleetGate


def test_role_groups_exist_from_migrations(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "responder", "admin"}


def test_fleet_gate_is_a_single_row(db):
    assert FleetGate.load().pk == 1
    assert FleetGate.load().pk == 1
    with pytest.raises(IntegrityError):
        FleetGate.objects.create(pk=2)


def test_agent_slug_must_be_lowercase_words(db):
    agent = Agent(slug="Bad Slug!", name="x")
    with pytest.raises(ValidationError) as err:
        agent.full_clean()
    assert "slug" in err.value.message_dict


def test_high_risk_tools_must_be_allowed_tools(db):
    agent = Agent(slug="a", name="A", allowed_tools=["search"], high_risk_tools=["refund"])
    with pytest.raises(ValidationError) as err:
        agent.full_clean()
    assert "refund" in str(err.value.message_dict["high_risk_tools"])


def test_new_agent_is_active_and_not_stopped(make_agent):
    agent = make_agent()
    assert agent.state == "active"
    assert agent.is_stopped is False
    assert agent.gate_version == 1


def test_api_key_belongs_to_exactly_one_agent_or_user(make_agent, make_user):
    agent, user = make_agent(), make_user()
    _raw, lookup, key_hash = ApiKey.generate()
    with pytest.raises(IntegrityError):
        ApiKey.objects.create(lookup=lookup, key_hash=key_hash, agent=agent, user=user, scopes=["gate"])


def test_audit_entries_read_newest_first(make_agent):
    agent = make_agent()
    AuditEntry.objects.create(agent=agent, action="pause", actor_label="x")
    entries = list(AuditEntry.objects.filter(agent=agent))
    assert [e.action for e in entries] == ["pause", "register"]
