"""The SDK against a real Firebreak server: every gate change reaches it over each transport."""

import time

import pytest
from firebreak_sdk import AgentKilled, AgentPaused, BudgetFrozen, Gate, GateUnavailable, ToolDisabled

from agents import fleet, services
from agents.gate import gate_reconcile
from agents.keys.services import api_key_create
from agents.models import Agent
from core.actors import Actor
from core.redis import gate_redis_url, get_redis


@pytest.fixture
def agent(make_agent):
    return make_agent("sdk-bot", allowed_tools=["search", "refund"], high_risk_tools=["refund"])


@pytest.fixture
def agent_key(agent):
    return api_key_create(agent=agent, scopes=["ingest", "gate"])[1]


@pytest.fixture(params=["redis", "http"])
def gate(request, agent, agent_key, live_server):
    if request.param == "redis":
        g = Gate("sdk-bot", redis_url=gate_redis_url())
    else:
        # Re-read on every check so the test need not wait out the 1 s staleness window.
        g = Gate("sdk-bot", url=live_server.url, api_key=agent_key, max_staleness=0)
    yield g
    g.close()


def eventually(fn, exc, timeout=2.0):
    """The SDK over Redis hears a change by subscription; give it a moment, then it must raise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fn()
        except exc as raised:
            return raised
        if time.monotonic() > deadline:
            raise AssertionError(f"{exc.__name__} was not raised")
        time.sleep(0.01)


def test_a_killed_agents_next_check_raises(gate, agent, responder):
    gate.check()
    services.agent_kill(agent=agent, actor=Actor.person(responder), reason="runaway loop")
    raised = eventually(gate.check, AgentKilled)
    assert raised.reason == "runaway loop"
    assert raised.changed_by == responder.username
    assert gate.fallback_response() == Agent.objects.get(pk=agent.pk).fallback_message


def test_pause_then_resume(gate, agent, responder):
    services.agent_pause(agent=agent, actor=Actor.person(responder), reason="look closer")
    eventually(gate.check, AgentPaused)
    services.agent_resume(agent=agent, actor=Actor.person(responder), reason="looked")
    deadline = time.monotonic() + 2
    while True:
        try:
            gate.check()
            break
        except AgentPaused:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_a_disabled_tool_raises_for_that_tool_only(gate, agent, responder):
    services.agent_tool_disable(agent=agent, tool="refund", actor=Actor.person(responder), reason="wrong refunds")
    raised = eventually(lambda: gate.check(tool="refund"), ToolDisabled)
    assert raised.tool == "refund"
    gate.check(tool="search")
    gate.check()


def test_budget_freeze_refuses_a_new_run_and_lets_a_running_one_finish(gate, agent, responder):
    gate.begin_run()  # a run already in flight
    services.agent_budget_freeze(agent=agent, actor=Actor.person(responder), reason="cost spiral")
    eventually(gate.begin_run, BudgetFrozen)
    gate.check()  # the running one drains
    gate.check(tool="search")


def test_fleet_stop_reaches_every_agent(gate, agent, responder):
    fleet.fleet_stop(actor=Actor.person(responder), reason="all hands")
    raised = eventually(gate.check, AgentKilled)
    assert "all hands" in raised.reason


def test_wrong_key_fails_closed(agent, live_server):
    with Gate("sdk-bot", url=live_server.url, api_key="fbk_000000000000_wrong") as g, pytest.raises(GateUnavailable):
        g.check()


@pytest.mark.slow
def test_redis_restarted_empty_stops_agents_until_the_reconciler_restores_every_kill(
    agent, responder, make_agent, private_redis, settings
):
    # A real restart, of a Redis of the test's own: every key is gone, as after a restart without persistence.
    settings.REDIS_URL = private_redis.url
    get_redis.cache_clear()
    other = make_agent("other-bot")
    services.agent_kill(agent=agent, actor=Actor.person(responder), reason="kept killed")
    gate_reconcile()
    with (
        Gate("sdk-bot", redis_url=gate_redis_url(), max_staleness=0, subscribe=False) as killed_gate,
        Gate("other-bot", redis_url=gate_redis_url(), max_staleness=0, subscribe=False) as active_gate,
    ):
        active_gate.check()
        with pytest.raises(AgentKilled):
            killed_gate.check()
        private_redis.restart()
        assert private_redis.client(db=settings.FIREBREAK_REDIS_DB).dbsize() == 0
        with pytest.raises(GateUnavailable):
            active_gate.check()  # fails closed: nothing runs on a missing gate
        with pytest.raises(GateUnavailable):
            killed_gate.check()
        assert gate_reconcile() == 2
        eventually(killed_gate.check, AgentKilled)
        active_gate.check()
    assert other.state == "active"
