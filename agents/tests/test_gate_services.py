"""The gate services: state, audit rows, write-through to Redis, refusals that write nothing."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from agents import fleet, services
from agents.gate import CHANNEL, KEY, gate_document, gate_publish, gate_reconcile
from agents.keys.services import api_key_create
from agents.models import Agent, AuditEntry, FleetGate
from agents.signing import document_verify
from core.actors import Actor


@pytest.fixture
def publish(django_capture_on_commit_callbacks):
    """Run the on-commit write-through as a real commit would."""

    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run


def doc(redis_client, slug):
    raw = redis_client.get(KEY.format(slug=slug))
    return json.loads(raw) if raw else None


def test_registering_an_agent_publishes_an_active_gate(make_agent, redis_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        make_agent("fresh")
    gate = doc(redis_client, "fresh")
    assert gate["state"] == "active"
    assert gate["agent"] == "fresh"
    assert set(gate) >= {"agent", "state", "reason", "disabled_tools", "budget", "version"}


def test_kill_writes_state_audit_and_redis(make_agent, responder, redis_client, publish):
    agent = make_agent("refunds")
    pubsub = redis_client.pubsub()
    pubsub.subscribe(CHANNEL.format(slug="refunds"))
    pubsub.get_message(timeout=1)  # subscribe confirmation
    entry = publish(
        services.agent_kill, agent=agent, actor=Actor.person(responder), reason="looping on refunds", incident_number=3
    )
    agent.refresh_from_db()
    assert agent.state == "killed"
    assert agent.state_changed_by == responder.username
    assert (entry.action, entry.actor, entry.reason, entry.incident_number) == (
        "kill",
        responder,
        "looping on refunds",
        3,
    )
    assert entry.before["state"] == "active" and entry.after["state"] == "killed"
    gate = doc(redis_client, "refunds")
    assert gate["state"] == "killed"
    assert gate["reason"] == "looping on refunds"
    assert gate["changed_by"] == responder.username
    assert gate["version"] == agent.gate_version + FleetGate.load().version
    message = pubsub.get_message(timeout=1)
    assert json.loads(message["data"]) == gate


def test_kill_without_a_reason_is_one_click_and_says_so(make_agent, responder):
    agent = make_agent()
    entry = services.agent_kill(agent=agent, actor=Actor.person(responder))
    assert entry.reason == ""
    agent.refresh_from_db()
    assert agent.state == "killed"


def test_killing_a_killed_agent_changes_nothing(make_agent, responder):
    agent = make_agent()
    services.agent_kill(agent=agent, actor=Actor.person(responder))
    version = Agent.objects.get(pk=agent.pk).gate_version
    assert services.agent_kill(agent=agent, actor=Actor.person(responder)) is None
    assert AuditEntry.objects.filter(agent=agent, action="kill").count() == 1
    assert Agent.objects.get(pk=agent.pk).gate_version == version


def test_pausing_a_killed_agent_is_refused_and_writes_nothing(make_agent, responder):
    agent = make_agent()
    services.agent_kill(agent=agent, actor=Actor.person(responder))
    with pytest.raises(services.GateConflict):
        services.agent_pause(agent=agent, actor=Actor.person(responder))
    assert Agent.objects.get(pk=agent.pk).state == "killed"
    assert not AuditEntry.objects.filter(action="pause").exists()


def test_resume_needs_a_reason(make_agent, responder):
    agent = make_agent()
    services.agent_pause(agent=agent, actor=Actor.person(responder))
    with pytest.raises(ValidationError) as err:
        services.agent_resume(agent=agent, actor=Actor.person(responder), reason="  ")
    assert "reason" in err.value.message_dict
    assert Agent.objects.get(pk=agent.pk).state == "paused"
    assert not AuditEntry.objects.filter(action="resume").exists()


def test_resuming_an_active_agent_is_a_conflict(make_agent, responder):
    with pytest.raises(services.GateConflict):
        services.agent_resume(agent=make_agent(), actor=Actor.person(responder), reason="why not")


def test_an_agent_key_can_never_resume_or_kill(make_agent):
    from agents.keys.authentication import AgentPrincipal

    agent = make_agent()
    key, _ = api_key_create(agent=agent, scopes=["gate"])
    principal = AgentPrincipal(key)
    services.agent_kill(agent=agent, actor=Actor.system("responder-x"))
    with pytest.raises(PermissionDenied):
        services.agent_resume(agent=agent, actor=principal.as_actor(), reason="I feel better")
    with pytest.raises(PermissionDenied):
        services.agent_pause(agent=make_agent(), actor=principal.as_actor())
    assert Agent.objects.get(pk=agent.pk).state == "killed"
    assert not AuditEntry.objects.filter(action__in=["resume", "pause"]).exists()


def test_tool_disable_and_enable(make_agent, responder, redis_client, publish):
    agent = make_agent(allowed_tools=["search", "refund"], high_risk_tools=["refund"])
    publish(
        services.agent_tool_disable, agent=agent, tool="refund", actor=Actor.person(responder), reason="bad refunds"
    )
    assert doc(redis_client, agent.slug)["disabled_tools"] == ["refund"]
    assert doc(redis_client, agent.slug)["state"] == "active"
    assert services.agent_tool_disable(agent=agent, tool="refund", actor=Actor.person(responder)) is None
    publish(services.agent_tool_enable, agent=agent, tool="refund", actor=Actor.person(responder))
    assert doc(redis_client, agent.slug)["disabled_tools"] == []
    actions = list(AuditEntry.objects.filter(agent=agent).values_list("action", "tool"))
    assert ("tool_disable", "refund") in actions and ("tool_enable", "refund") in actions


def test_bad_tool_name_is_refused(make_agent, responder):
    agent = make_agent()
    with pytest.raises(ValidationError):
        services.agent_tool_disable(agent=agent, tool="rm -rf /", actor=Actor.person(responder))
    assert Agent.objects.get(pk=agent.pk).disabled_tools == []


def test_budget_freeze_refuses_new_runs_and_changes_no_cap(
    make_agent, responder, make_spans, ingest, redis_client, publish
):
    agent = make_agent("spender", session_cost_cap=Decimal("10"), daily_cost_cap=Decimal("100"))
    for cost in (0.10, 0.20, 0.30, 5.00):  # the old freeze lowered the cap to this p50 (0.25)
        ingest(make_spans(agent="spender", steps=[{"kind": "llm", "cost": cost}]))
    publish(services.agent_budget_freeze, agent=agent, actor=Actor.person(responder), reason="cost spiral")
    agent.refresh_from_db()
    assert agent.budget_frozen and agent.budget_frozen_at is not None
    assert agent.session_cost_cap == Decimal("10")
    gate = doc(redis_client, "spender")
    assert gate["budget"]["frozen"] is True
    assert gate["budget"]["frozen_at"] == agent.budget_frozen_at.isoformat()
    assert gate["budget"]["session_cost_cap"] == 10.0
    entry = AuditEntry.objects.get(agent=agent, action="budget_freeze")
    assert entry.actor_label == responder.username and entry.reason == "cost spiral"
    assert entry.before["budget_frozen"] is False and entry.after["budget_frozen"] is True
    assert services.agent_budget_freeze(agent=agent, actor=Actor.person(responder)) is None  # already frozen

    with pytest.raises(ValidationError):
        services.agent_budget_unfreeze(agent=agent, actor=Actor.person(responder), reason="")
    assert Agent.objects.get(pk=agent.pk).budget_frozen  # nothing written
    publish(services.agent_budget_unfreeze, agent=agent, actor=Actor.person(responder), reason="spiral fixed")
    agent.refresh_from_db()
    assert not agent.budget_frozen and agent.budget_frozen_at is None
    assert (agent.session_cost_cap, agent.daily_cost_cap) == (Decimal("10"), Decimal("100"))
    gate = doc(redis_client, "spender")
    assert gate["budget"] == {
        "frozen": False,
        "frozen_at": None,
        "session_cost_cap": 10.0,
        "daily_cost_cap": 100.0,
        "session_token_cap": None,
        "session_step_cap": None,
    }
    assert AuditEntry.objects.filter(agent=agent, action="budget_unfreeze", reason="spiral fixed").count() == 1


def test_the_migration_gives_back_a_cap_the_old_freeze_lowered(make_agent, responder):
    """0009 restores the per-session cap an old freeze lowered to the p50, from the freeze's audit row."""
    from importlib import import_module

    from django.apps import apps

    restore_caps = import_module("agents.migrations.0009_budget_frozen_at").restore_caps
    lowered = make_agent("old-freeze", session_cost_cap=Decimal("0.2500"))
    changed_since = make_agent("changed-since", session_cost_cap=Decimal("0.2500"))
    Agent.objects.filter(pk__in=[lowered.pk, changed_since.pk]).update(budget_frozen=True)
    for agent in (lowered, changed_since):
        AuditEntry.objects.create(
            agent=agent,
            action="budget_freeze",
            actor_label="erin",
            before={"budget_frozen": False, "session_cost_cap": "10.0000"},
            after={"budget_frozen": True, "session_cost_cap": "0.2500"},
        )
    AuditEntry.objects.create(agent=changed_since, action="budget_caps", actor_label="erin", after={})
    version = Agent.objects.get(pk=lowered.pk).gate_version

    restore_caps(apps, None)

    lowered.refresh_from_db()
    assert lowered.session_cost_cap == Decimal("10") and lowered.gate_version == version + 1
    assert lowered.budget_frozen_at is not None
    row = AuditEntry.objects.filter(agent=lowered, action="budget_caps").get()
    assert row.after == {"session_cost_cap": "10.0000"} and "no longer changes caps" in row.reason
    assert Agent.objects.get(pk=changed_since.pk).session_cost_cap == Decimal("0.2500")  # theirs stands


def test_budget_caps_reject_negative_values(make_agent, responder):
    agent = make_agent()
    with pytest.raises(ValidationError):
        services.agent_budget_caps_set(
            agent=agent,
            actor=Actor.person(responder),
            session_cost_cap=Decimal("-1"),
            daily_cost_cap=None,
            session_token_cap=None,
            session_step_cap=None,
        )
    assert Agent.objects.get(pk=agent.pk).session_cost_cap == Decimal("5")


def test_fleet_stop_kills_every_gate_and_resume_restores_each_own_state(
    make_agent, responder, admin_user, redis_client, publish
):
    a, b = make_agent("a"), make_agent("b")
    publish(services.agent_kill, agent=b, actor=Actor.person(responder), reason="on its own")
    gate_reconcile()
    before = doc(redis_client, "a")["version"]
    publish(fleet.fleet_stop, actor=Actor.person(responder), reason="something is very wrong")
    gate_a = doc(redis_client, "a")
    assert gate_a["state"] == "killed" and gate_a["fleet_stopped"] is True
    assert "something is very wrong" in gate_a["reason"]
    assert gate_a["version"] > before
    assert Agent.objects.get(pk=a.pk).state == "active"  # its own state is kept underneath
    with pytest.raises(ValidationError):
        fleet.fleet_resume(actor=Actor.person(admin_user), reason="")
    publish(fleet.fleet_resume, actor=Actor.person(admin_user), reason="all clear")
    assert doc(redis_client, "a")["state"] == "active"
    assert doc(redis_client, "b")["state"] == "killed"
    assert doc(redis_client, "a")["version"] > gate_a["version"]
    assert list(AuditEntry.objects.filter(agent=None).values_list("action", flat=True)) == [
        "fleet_resume",
        "fleet_stop",
    ]


def test_change_freeze_is_readable_in_every_gate(make_agent, responder, redis_client, publish):
    make_agent("a")
    gate_reconcile()
    publish(fleet.change_freeze, actor=Actor.person(responder), on=True, reason="incident INC-4")
    assert doc(redis_client, "a")["change_freeze"] is True
    assert json.loads(redis_client.get("firebreak:fleet"))["change_freeze"] is True
    with pytest.raises(ValidationError):
        fleet.change_freeze(actor=Actor.person(responder), on=True, reason="")


def test_a_reason_added_later_is_its_own_row_by_its_own_author(
    make_agent, admin_user, responder, redis_client, publish
):
    agent = make_agent()
    entry = publish(services.agent_kill, agent=agent, actor=Actor.person(admin_user))
    amendment = publish(services.audit_reason_add, entry=entry, actor=Actor.person(responder), reason="runaway loop")
    kill = AuditEntry.objects.get(pk=entry.pk)
    assert kill.reason == "" and kill.actor == admin_user  # the admin's row says what the admin did, nothing more
    assert (amendment.action, amendment.amends_id, amendment.actor, amendment.reason) == (
        "reason",
        kill.pk,
        responder,
        "runaway loop",
    )
    assert Agent.objects.get(pk=agent.pk).state_reason == "runaway loop"
    assert doc(redis_client, agent.slug)["reason"] == "runaway loop"
    with pytest.raises(services.GateConflict):
        services.audit_reason_add(entry=entry, actor=Actor.person(responder), reason="again")
    with pytest.raises(services.GateConflict):
        services.audit_reason_add(entry=amendment, actor=Actor.person(responder), reason="again")


def test_reconciler_restores_every_kill_after_redis_loses_its_keys(make_agent, responder, redis_client, publish):
    killed = make_agent("killed-one")
    make_agent("active-one")
    publish(services.agent_kill, agent=killed, actor=Actor.person(responder), reason="x")
    redis_client.flushdb()
    assert doc(redis_client, "killed-one") is None
    assert gate_reconcile() == 2
    assert doc(redis_client, "killed-one")["state"] == "killed"
    assert doc(redis_client, "active-one")["state"] == "active"
    assert gate_reconcile() == 0
    redis_client.set(KEY.format(slug="killed-one"), json.dumps({**doc(redis_client, "killed-one"), "state": "active"}))
    assert gate_reconcile() == 1
    assert doc(redis_client, "killed-one")["state"] == "killed"


def test_a_writer_with_an_older_snapshot_never_puts_an_older_state_back(make_agent, responder, redis_client, publish):
    agent = make_agent("refund-agent")
    stale = Agent.objects.get(pk=agent.pk)  # what a reconciler read just before the kill committed
    publish(services.agent_kill, agent=agent, actor=Actor.person(responder), reason="x")
    gate_publish([stale], FleetGate.load())  # it writes late
    assert doc(redis_client, agent.slug)["state"] == "killed"


def test_after_a_restore_that_lowers_versions_the_epoch_moves_and_the_restored_state_is_published(
    make_agent, responder, redis_client, publish
):
    agent = make_agent("refund-agent")
    for _ in range(3):
        publish(services.agent_kill, agent=agent, actor=Actor.person(responder), reason="x")
        publish(services.agent_resume, agent=agent, actor=Actor.person(responder), reason="y")
    assert doc(redis_client, agent.slug)["version"] >= 7
    # The database comes back from an older backup: a lower version, and killed at the time.
    Agent.objects.filter(pk=agent.pk).update(gate_version=2, state="killed", state_reason="from the backup")
    gate_reconcile()
    fleet = FleetGate.load()
    assert fleet.epoch == 2
    assert AuditEntry.objects.filter(action="epoch").count() == 1
    stored = doc(redis_client, agent.slug)
    assert (stored["epoch"], stored["state"], stored["reason"]) == (2, "killed", "from the backup")
    assert document_verify(stored)
    gate_reconcile()  # nothing more is ahead: the epoch stays
    assert FleetGate.load().epoch == 2


def test_the_reconciler_replaces_a_document_that_is_not_the_servers(make_agent, redis_client):
    agent = make_agent("refund-agent")
    Agent.objects.filter(pk=agent.pk).update(state="killed")
    forged = {**gate_document(Agent.objects.get(pk=agent.pk), FleetGate.load()), "state": "active", "version": 10**12}
    redis_client.set(KEY.format(slug=agent.slug), json.dumps(forged))
    gate_reconcile()
    stored = doc(redis_client, agent.slug)
    assert stored["state"] == "killed" and document_verify(stored)
