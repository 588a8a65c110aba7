"""LoopGuard and BudgetGuard: the limits an agent relies on to stop a runaway run, and the action hash."""

import hashlib
import pickle
import time

import pytest
from firebreak_sdk import (
    AgentKilled,
    BudgetExceeded,
    BudgetFrozen,
    BudgetGuard,
    FirebreakStop,
    GateUnavailable,
    GuardTripped,
    LoopDetected,
    LoopGuard,
    ToolDisabled,
    action_hash,
)

from .conftest import AGENT, gate_doc

# --- action hash -------------------------------------------------------------


def test_action_hash_ignores_argument_key_order():
    assert action_hash("lookup_order", {"order": "A1", "customer": 7}) == action_hash(
        "lookup_order", {"customer": 7, "order": "A1"}
    )


def test_action_hash_is_sha256_of_tool_and_canonical_json_truncated_to_16_hex():
    payload = 'lookup_order\x00{"customer":"Zoë","order":"A1"}'
    expected = hashlib.sha256(payload.encode()).hexdigest()[:16]

    assert action_hash("lookup_order", {"order": "A1", "customer": "Zoë"}) == expected


def test_action_hash_matches_the_servers():
    from traces.ingest.normalize import action_hash as server_action_hash

    for tool, args in [
        ("refund", {"amount": 12.5, "order": "A1"}),
        ("search", {"q": "naïve", "k": [1, 2]}),
        ("x", None),
    ]:
        assert action_hash(tool, args) == server_action_hash(tool, args)


def test_action_hash_differs_for_different_tools_or_arguments():
    base = action_hash("refund", {"order": "A1"})

    assert action_hash("refund", {"order": "A2"}) != base
    assert action_hash("lookup_order", {"order": "A1"}) != base
    assert action_hash("refund", None) == action_hash("refund", {})


# --- LoopGuard ---------------------------------------------------------------


def test_three_identical_tool_calls_in_a_row_are_a_loop():
    guard = LoopGuard()
    guard.tool_call("lookup_order", {"order": "A1", "full": True})
    guard.tool_call("lookup_order", {"full": True, "order": "A1"})

    with pytest.raises(LoopDetected) as caught:
        guard.tool_call("lookup_order", {"order": "A1", "full": True})

    assert str(caught.value) == "lookup_order called 3 times in a row with identical arguments"
    assert caught.value.limit == "max_repeated_action"
    assert isinstance(caught.value, GuardTripped) and isinstance(caught.value, FirebreakStop)


def test_a_different_call_in_between_resets_the_repetition_count():
    guard = LoopGuard(max_repeated_action=3)
    for _ in range(10):
        guard.tool_call("lookup_order", {"order": "A1"})
        guard.tool_call("lookup_order", {"order": "A1"})
        guard.tool_call("search", {"q": "refund policy"})


def test_repetition_detection_can_be_switched_off():
    guard = LoopGuard(max_repeated_action=None)
    for _ in range(50):
        guard.tool_call("poll_status", {"job": 1})


def test_tool_call_returns_the_action_hash():
    assert LoopGuard().tool_call("refund", {"order": "A1"}) == action_hash("refund", {"order": "A1"})


def test_max_steps_allows_that_many_steps_and_stops_the_next():
    guard = LoopGuard(max_steps=3)
    for _ in range(3):
        guard.step()

    with pytest.raises(LoopDetected, match="4 steps, over the cap of 3") as caught:
        guard.step()
    assert caught.value.limit == "max_steps"


def test_max_tokens_counts_tokens_across_steps():
    guard = LoopGuard(max_tokens=1000)
    guard.step(tokens=600)
    guard.step(tokens=400)

    with pytest.raises(LoopDetected, match="1001 tokens used") as caught:
        guard.step(tokens=1)
    assert caught.value.limit == "max_tokens"


def test_max_duration_stops_a_run_that_has_gone_on_too_long():
    guard = LoopGuard(max_duration=0.1)
    guard.step()
    time.sleep(0.15)

    with pytest.raises(LoopDetected, match="max_duration"):
        guard.step()
    with pytest.raises(LoopDetected, match="max_duration"):
        guard.tool_call("search", {"q": "x"})


def test_max_tool_calls_counts_every_tool_call():
    guard = LoopGuard(max_tool_calls=2)
    guard.tool_call("search", {"q": 1})
    guard.tool_call("lookup_order", {"order": 1})

    with pytest.raises(LoopDetected, match="3 tool calls") as caught:
        guard.tool_call("refund", {"order": 1})
    assert caught.value.limit == "max_tool_calls"


def test_max_consecutive_same_tool_trips_even_with_varying_arguments():
    guard = LoopGuard(max_consecutive_same_tool=3)
    for page in range(3):
        guard.tool_call("search", {"page": page})

    with pytest.raises(LoopDetected, match="search called 4 times in a row") as caught:
        guard.tool_call("search", {"page": 3})
    assert caught.value.limit == "max_consecutive_same_tool"


# --- BudgetGuard -------------------------------------------------------------


def test_a_call_that_would_pass_the_cost_cap_is_refused():
    budget = BudgetGuard(session_cost_cap=1.0)
    budget.before_model_call(estimated_cost=0.5)
    budget.record(cost=0.6, tokens=100)
    budget.before_model_call(estimated_cost=0.4)

    with pytest.raises(BudgetExceeded, match="session cost cap") as caught:
        budget.before_model_call(estimated_cost=0.5)
    assert caught.value.limit == "session_cost_cap"
    assert (budget.spent, budget.tokens, budget.steps) == (0.6, 100, 1)


def test_a_used_up_cost_cap_refuses_even_calls_without_an_estimate():
    budget = BudgetGuard(session_cost_cap=1.0)
    budget.record(cost=1.0)

    with pytest.raises(BudgetExceeded):
        budget.before_model_call()


def test_token_and_step_caps():
    tokens = BudgetGuard(session_token_cap=1000)
    tokens.record(tokens=900)
    tokens.before_model_call(estimated_tokens=100)
    with pytest.raises(BudgetExceeded, match="token cap") as caught:
        tokens.before_model_call(estimated_tokens=101)
    assert caught.value.limit == "session_token_cap"

    steps = BudgetGuard(session_step_cap=2)
    for _ in range(2):
        steps.before_model_call()
        steps.record()
    with pytest.raises(BudgetExceeded, match="step cap") as caught:
        steps.before_model_call()
    assert caught.value.limit == "session_step_cap"


def test_no_caps_means_no_limit():
    budget = BudgetGuard()
    budget.record(cost=1e6, tokens=10**9)
    budget.before_model_call(estimated_cost=1e6, estimated_tokens=10**9)


def test_caps_default_to_the_gate_documents_budget(make_gate, put):
    put(gate_doc("active", budget={"frozen": False, "session_cost_cap": 2.0, "session_token_cap": None}))
    gate = make_gate()
    budget = BudgetGuard(gate)

    assert budget.caps == {"session_cost_cap": 2.0, "session_token_cap": None, "session_step_cap": None}
    budget.record(cost=1.5)
    with pytest.raises(BudgetExceeded):
        budget.before_model_call(estimated_cost=0.6)


def test_explicit_caps_override_the_gate_document(make_gate, put):
    put(gate_doc("active"))  # session_cost_cap 5.0
    budget = BudgetGuard(make_gate(), session_cost_cap=0.5)

    budget.record(cost=0.4)
    with pytest.raises(BudgetExceeded):
        budget.before_model_call(estimated_cost=0.2)


def test_a_cap_lowered_on_the_gate_applies_to_the_run_in_flight(make_gate, put, redis_client):
    from .conftest import wait_subscribed, wait_until

    put(gate_doc("active", version=1))  # session_cost_cap 5.0
    gate = make_gate(max_staleness=60)
    budget = BudgetGuard(gate)
    wait_subscribed(redis_client)
    budget.record(cost=1.0)
    budget.before_model_call(estimated_cost=1.0)

    lowered = gate_doc("active", version=2)
    lowered["budget"]["session_cost_cap"] = 1.5
    put(lowered)
    wait_until(lambda: gate.state["version"] == 2, timeout=2)

    with pytest.raises(BudgetExceeded, match=r"\$1\.5000 cap"):
        budget.before_model_call(estimated_cost=1.0)


def test_a_run_in_flight_drains_under_its_starting_caps_through_a_freeze(make_gate, put, redis_client):
    """A freeze refuses new runs; the run already going keeps the caps it started with, even when the frozen
    document carries a lower cap (as an older server's freeze wrote), and is not cut."""
    from .conftest import wait_subscribed, wait_until

    put(gate_doc("active", version=1))  # session_cost_cap 5.0
    gate = make_gate(max_staleness=60)
    gate.begin_run()
    budget = BudgetGuard(gate)
    wait_subscribed(redis_client)
    budget.record(cost=2.0)

    frozen = gate_doc("active", version=2, changed_by="erin")
    frozen["budget"].update(frozen=True, frozen_at="2026-12-02T02:00:00+00:00", session_cost_cap=0.25)
    put(frozen)
    wait_until(lambda: gate.state["version"] == 2, timeout=2)

    assert budget.started_caps["session_cost_cap"] == 5.0
    assert budget.caps["session_cost_cap"] == 5.0
    budget.before_model_call(estimated_cost=2.5)  # drains: 2.0 + 2.5 is under the 5.0 it started with
    budget.record(cost=2.5)
    gate.check()
    with pytest.raises(BudgetFrozen, match="budget frozen: new runs refused"):
        gate.begin_run()
    with pytest.raises(BudgetExceeded, match=r"\$5\.0000 cap"):
        budget.before_model_call(estimated_cost=1.0)  # and its own cap still holds

    unfrozen = gate_doc("active", version=3)
    put(unfrozen)
    wait_until(lambda: gate.state["version"] == 3, timeout=2)
    gate.begin_run()
    assert BudgetGuard(gate).caps["session_cost_cap"] == 5.0


def test_a_budget_guard_on_an_unreadable_gate_fails_closed(make_gate):
    with pytest.raises(GateUnavailable):
        BudgetGuard(make_gate())


# --- exceptions ----------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        AgentKilled(AGENT, reason="looping on refunds", changed_by="alice", version=12),
        ToolDisabled(AGENT, "refund", reason="over limit", changed_by="bob", version=3),
        GateUnavailable(AGENT, reason="connection refused"),
        LoopDetected("lookup_order called 3 times in a row with identical arguments", limit="max_repeated_action"),
    ],
    ids=type,
)
def test_exceptions_survive_pickling_with_their_attributes(exc):
    # Agents run in worker processes (multiprocessing, Celery): the stop reason must cross the boundary.
    copy = pickle.loads(pickle.dumps(exc))

    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert copy.__dict__ == exc.__dict__
