"""The gate over direct Redis: what an agent sees for each gate state, and that it fails closed."""

import asyncio
import concurrent.futures
import json
import threading
import time

import pytest
from firebreak_sdk import (
    AgentKilled,
    AgentPaused,
    BudgetFrozen,
    FirebreakStop,
    Gate,
    GateClosed,
    GateUnavailable,
    ToolDisabled,
)

from .conftest import AGENT, CHANNEL, KEY, content, free_port, gate_doc, signed, signed_at, wait_subscribed, wait_until


def run_async(coro):
    """Run a coroutine in its own thread: browser tests may leave an event loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_an_active_gate_lets_steps_tools_and_new_runs_through(make_gate, put):
    put(gate_doc("active", version=4))
    gate = make_gate()

    gate.check()
    gate.check(tool="refund")
    gate.begin_run()

    assert content(gate.state) == gate_doc("active", version=4)


def test_state_is_a_copy_that_cannot_change_the_gate(make_gate, put):
    put(gate_doc("active", disabled_tools=["refund"]))
    gate = make_gate()
    gate.check()

    gate.state["disabled_tools"].clear()

    with pytest.raises(ToolDisabled):
        gate.check(tool="refund")


def test_a_killed_agent_raises_agent_killed_with_who_and_why(make_gate, put):
    put(gate_doc("killed", version=12, reason="looping on refunds", changed_by="alice"))
    gate = make_gate()

    with pytest.raises(AgentKilled) as caught:
        gate.check()

    exc = caught.value
    assert (exc.agent, exc.reason, exc.changed_by, exc.version) == (AGENT, "looping on refunds", "alice", 12)
    assert f"{type(exc).__name__}: {exc}" == "AgentKilled: refund-agent was killed by alice: looping on refunds"
    assert isinstance(exc, GateClosed) and isinstance(exc, FirebreakStop)


def test_a_kill_also_stops_tool_calls_and_new_runs(make_gate, put):
    put(gate_doc("killed", reason="looping on refunds"))
    gate = make_gate()

    with pytest.raises(AgentKilled):
        gate.check(tool="lookup_order")
    with pytest.raises(AgentKilled):
        gate.begin_run()


def test_a_fleet_stop_stops_the_agent_even_if_its_own_state_is_active(make_gate, put):
    put(gate_doc("active", fleet_stopped=True, reason="fleet stop: bad model rollout", changed_by="bob"))
    gate = make_gate()

    with pytest.raises(AgentKilled, match="stopped with the whole fleet by bob: fleet stop: bad model rollout"):
        gate.check()


def test_a_paused_agent_raises_agent_paused_in_raise_mode(make_gate, put):
    put(gate_doc("paused", version=3, reason="investigating", changed_by="carol"))
    gate = make_gate(on_pause="raise")

    with pytest.raises(AgentPaused) as caught:
        gate.check()

    assert (caught.value.reason, caught.value.changed_by, caught.value.version) == ("investigating", "carol", 3)
    assert str(caught.value) == "refund-agent is paused by carol: investigating"


def _check_in_thread(gate: Gate, **kwargs) -> dict:
    """Run gate.check() in a thread; the dict gets 'error' (or None) and 'returned_at' when it finishes."""
    result: dict = {}

    def run():
        try:
            gate.check(**kwargs)
            result["error"] = None
        except Exception as exc:
            result["error"] = exc
        result["returned_at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    result["thread"] = thread
    return result


def test_wait_mode_blocks_while_paused_and_returns_as_soon_as_a_resume_is_published(make_gate, put, redis_client):
    put(gate_doc("paused", version=1, reason="investigating"))
    # A long max_staleness: only the subscription can deliver the resume in time.
    gate = make_gate(on_pause="wait", max_staleness=60)
    wait_subscribed(redis_client)

    result = _check_in_thread(gate)
    time.sleep(0.3)
    assert "returned_at" not in result, "check() returned while the agent was paused"

    put(gate_doc("active", version=2))
    resumed_at = time.monotonic()
    result["thread"].join(timeout=5)

    assert result["error"] is None
    # Without the subscription it would wait out the 60 s window; the margin is for a busy machine.
    assert result["returned_at"] - resumed_at < 1.0


def test_wait_mode_without_a_subscription_notices_a_resume_by_re_reading(make_gate, put):
    put(gate_doc("paused", version=1))
    gate = make_gate(on_pause="wait", subscribe=False, max_staleness=0.1)

    result = _check_in_thread(gate)
    time.sleep(0.3)
    assert "returned_at" not in result
    put(gate_doc("active", version=2), publish=False)
    resumed_at = time.monotonic()
    result["thread"].join(timeout=5)

    assert result["error"] is None
    assert result["returned_at"] - resumed_at < 0.5


def test_wait_mode_raises_agent_killed_when_killed_while_waiting(make_gate, put, redis_client):
    put(gate_doc("paused", version=1))
    gate = make_gate(on_pause="wait", max_staleness=60)
    wait_subscribed(redis_client)

    result = _check_in_thread(gate)
    time.sleep(0.2)
    put(gate_doc("killed", version=2, reason="it was worse than we thought"))
    result["thread"].join(timeout=5)

    assert isinstance(result["error"], AgentKilled)
    assert result["error"].reason == "it was worse than we thought"


def test_wait_mode_raises_agent_paused_after_the_pause_timeout(make_gate, put):
    put(gate_doc("paused", version=1, reason="investigating"))
    gate = make_gate(on_pause="wait", pause_timeout=0.4, max_staleness=0.1)

    started = time.monotonic()
    with pytest.raises(AgentPaused, match=r"still paused after 0\.4 s"):
        gate.check()

    assert 0.4 <= time.monotonic() - started < 1.5


def test_wait_mode_then_applies_the_tool_rules_of_the_resumed_gate(make_gate, put, redis_client):
    put(gate_doc("paused", version=1))
    gate = make_gate(on_pause="wait", max_staleness=60)
    wait_subscribed(redis_client)

    result = _check_in_thread(gate, tool="refund")
    time.sleep(0.2)
    put(gate_doc("active", version=2, disabled_tools=["refund"]))
    result["thread"].join(timeout=5)

    assert isinstance(result["error"], ToolDisabled)


def test_a_disabled_tool_raises_for_that_tool_only(make_gate, put):
    put(gate_doc("active", disabled_tools=["refund"], reason="refunds over limit", changed_by="dave"))
    gate = make_gate()

    with pytest.raises(ToolDisabled) as caught:
        gate.check(tool="refund")
    assert caught.value.tool == "refund"
    assert str(caught.value) == "tool refund of refund-agent was disabled by dave: refunds over limit"

    gate.check(tool="lookup_order")
    gate.check()
    gate.begin_run()


def test_a_frozen_budget_refuses_new_runs_while_runs_in_flight_drain(make_gate, put):
    doc = gate_doc("active", reason="cost spike", changed_by="erin")
    doc["budget"]["frozen"] = True
    put(doc)
    gate = make_gate()

    with pytest.raises(BudgetFrozen) as caught:
        gate.begin_run()
    assert caught.value.changed_by == "erin"
    assert str(caught.value) == "budget frozen: new runs refused for refund-agent by erin: cost spike"

    gate.check()
    gate.check(tool="refund")


def test_the_decorators_check_before_every_call_and_skip_the_call_when_closed(make_gate, put):
    put(gate_doc("active", version=1, disabled_tools=["refund"]))
    gate = make_gate(max_staleness=0)
    calls: list[str] = []

    @gate.guard
    def step(n):
        calls.append(f"step {n}")
        return n

    @gate.tool("refund")
    def issue_refund(order):
        calls.append("refund")

    @gate.tool()
    def lookup_order(order):
        calls.append("lookup_order")
        return {"order": order}

    assert step(1) == 1
    assert lookup_order("A1") == {"order": "A1"}
    with pytest.raises(ToolDisabled):
        issue_refund("A1")

    put(gate_doc("killed", version=2))
    with pytest.raises(AgentKilled):
        step(2)
    with pytest.raises(AgentKilled):
        lookup_order("A1")

    assert calls == ["step 1", "lookup_order"]
    assert step.__name__ == "step"


def test_the_decorators_wrap_async_functions(make_gate, put):
    put(gate_doc("active", disabled_tools=["refund"]))
    gate = make_gate()

    @gate.guard
    async def step():
        return "stepped"

    @gate.tool
    async def refund():
        return "refunded"

    assert run_async(step()) == "stepped"
    with pytest.raises(ToolDisabled):
        run_async(refund())


def test_a_lower_version_published_after_a_higher_one_is_ignored(make_gate, put, redis_client):
    put(gate_doc("killed", version=12))
    gate = make_gate(max_staleness=60)
    wait_subscribed(redis_client)
    with pytest.raises(AgentKilled):
        gate.check()

    put(gate_doc("active", version=11), set_key=False)
    time.sleep(0.2)
    with pytest.raises(AgentKilled):
        gate.check()

    # The subscription is alive: the next version does get through.
    put(gate_doc("active", version=13), set_key=False)
    wait_until(lambda: gate.state["version"] == 13, timeout=2)
    gate.check()


def test_a_pushed_document_older_than_the_held_one_is_ignored(make_gate, put, redis_client):
    put(gate_doc("killed", version=12))
    gate = make_gate(max_staleness=60)  # only pushes can change what it holds
    wait_subscribed(redis_client)
    with pytest.raises(AgentKilled):
        gate.check()
    put(gate_doc("active", version=11), set_key=False)  # delayed or replayed, and signed: still older
    time.sleep(0.2)
    with pytest.raises(AgentKilled):
        gate.check()
    assert gate.state["version"] == 12


def test_a_restore_with_lower_versions_still_reaches_the_agent(make_gate, put, redis_client):
    """A database restore takes versions back: the server's word still wins, pushed with a new epoch
    or read fresh from the source."""
    put(gate_doc("active", version=12))
    pushed = make_gate(max_staleness=60)
    polled = make_gate(subscribe=False, max_staleness=0)
    wait_subscribed(redis_client)
    pushed.check()
    polled.check()
    put(gate_doc("killed", version=3, epoch=2, reason="restored, then killed"))  # the reconciler moved the epoch
    wait_until(lambda: pushed.state["version"] == 3, timeout=2)
    for gate in (pushed, polled):
        with pytest.raises(AgentKilled, match="restored, then killed"):
            gate.check()
    put(gate_doc("active", version=1, epoch=1), publish=False)  # even without a new epoch, a fresh read wins
    polled.check()


def test_a_missing_key_raises_gate_unavailable(make_gate):
    gate = make_gate()

    with pytest.raises(GateUnavailable, match=f"Redis key {KEY} does not exist") as caught:
        gate.check()
    assert isinstance(caught.value, GateClosed)
    assert caught.value.agent == AGENT


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'["active"]', "not a JSON object"),
        (json.dumps(gate_doc("resting")), "unknown state 'resting'"),
        (json.dumps({k: v for k, v in gate_doc().items() if k != "version"}), "version None"),
        (json.dumps(gate_doc(version="12")), "version '12'"),
        (json.dumps(gate_doc(disabled_tools="refund")), "disabled_tools"),
        (json.dumps(gate_doc(agent="other-agent")), "for agent 'other-agent'"),
        (json.dumps(gate_doc(budget={"session_cost_cap": "lots"})), "session_cost_cap"),
    ],
)
def test_a_malformed_value_raises_gate_unavailable(make_gate, put, raw, why):
    put(raw)
    gate = make_gate()

    with pytest.raises(GateUnavailable, match="gate document refused") as caught:
        gate.check()
    assert why in str(caught.value)


def test_a_malformed_value_after_a_good_one_fails_closed_once_the_copy_is_stale(make_gate, put):
    put(gate_doc("active", version=1))
    gate = make_gate(subscribe=False, max_staleness=0)
    gate.check()

    put(b"garbage", publish=False)

    with pytest.raises(GateUnavailable):
        gate.check()


@pytest.mark.parametrize("where", ["unix socket", "tcp port"])
def test_an_unreachable_redis_raises_gate_unavailable_quickly(tmp_path, where):
    url = f"unix://{tmp_path}/nothing.sock" if where == "unix socket" else f"redis://127.0.0.1:{free_port()}/15"
    with Gate(AGENT, redis_url=url) as gate:
        started = time.monotonic()
        with pytest.raises(GateUnavailable, match="ConnectionError") as caught:
            gate.check()
        assert time.monotonic() - started < 1.0
        assert caught.value.__cause__ is not None
        with pytest.raises(GateUnavailable):
            gate.begin_run()


def test_an_invalid_redis_url_fails_closed_at_check_time():
    with Gate(AGENT, redis_url="http://not-redis") as gate, pytest.raises(GateUnavailable, match="invalid redis_url"):
        gate.check()


def test_no_configuration_at_all_fails_closed(monkeypatch):
    for name in ("FIREBREAK_REDIS_URL", "FIREBREAK_URL", "FIREBREAK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with Gate.from_env(AGENT) as gate, pytest.raises(GateUnavailable, match="no gate configured"):
        gate.check()


def test_from_env_reads_firebreak_redis_url(monkeypatch, redis_url, put):
    put(gate_doc("killed", reason="from env"))
    monkeypatch.setenv("FIREBREAK_REDIS_URL", redis_url)
    monkeypatch.delenv("FIREBREAK_URL", raising=False)

    with Gate.from_env(AGENT) as gate, pytest.raises(AgentKilled, match="from env"):
        gate.check()


def test_a_passed_in_redis_client_is_used(redis_client, put):
    put(gate_doc("paused"))
    with Gate(AGENT, redis_client=redis_client, subscribe=False) as gate, pytest.raises(AgentPaused):
        gate.check()
    redis_client.ping()  # the gate does not close a client it was given


def test_a_published_kill_is_seen_by_the_next_check_within_milliseconds(make_gate, put, redis_client):
    put(gate_doc("active", version=1))
    gate = make_gate(max_staleness=60)
    gate.check()
    wait_subscribed(redis_client)

    put(gate_doc("killed", version=2, reason="looping on refunds"))
    published_at = time.monotonic()

    def killed() -> bool:
        try:
            gate.check()
        except AgentKilled:
            return True
        return False

    wait_until(killed, timeout=2, interval=0)
    assert time.monotonic() - published_at < 1.0  # the 60 s re-read could not have done it


def test_without_a_subscription_an_unpublished_change_is_seen_within_max_staleness(make_gate, put):
    put(gate_doc("active", version=1))
    gate = make_gate(subscribe=False, max_staleness=0.3)
    gate.check()

    put(gate_doc("killed", version=2), publish=False)
    written_at = time.monotonic()

    def killed() -> bool:
        try:
            gate.check()
        except AgentKilled:
            return True
        return False

    wait_until(killed, timeout=2, interval=0.001)
    # Without the re-read the kill is never seen (the wait above fails); the margin is for a busy machine.
    assert time.monotonic() - written_at <= 0.3 + 0.25


def test_a_fresh_copy_costs_no_redis_command_and_a_stale_one_costs_one_get(private_redis):
    server = private_redis.client()
    server.set(KEY, json.dumps(signed(gate_doc("active"))))

    def gets() -> int:
        return server.info("commandstats").get("cmdstat_get", {}).get("calls", 0)

    with Gate(AGENT, redis_url=private_redis.url, subscribe=False, max_staleness=60) as cached:
        for _ in range(1000):
            cached.check()
    assert gets() == 1

    with Gate(AGENT, redis_url=private_redis.url, subscribe=False, max_staleness=0) as uncached:
        for _ in range(1000):
            uncached.check()
    assert gets() == 1 + 1000


def test_when_redis_goes_down_the_cached_copy_ages_out_and_checks_fail_closed(private_redis):
    private_redis.client().set(KEY, json.dumps(signed(gate_doc("active"))))
    with Gate(AGENT, redis_url=private_redis.url, max_staleness=0.3) as gate:
        gate.check()
        wait_until(lambda: gate.subscribed)

        private_redis.stop()
        wait_until(lambda: not gate.subscribed, timeout=2)

        time.sleep(0.35)
        with pytest.raises(GateUnavailable):
            gate.check()
        with pytest.raises(GateUnavailable):
            gate.check(tool="refund")


def test_close_ends_the_subscription(redis_client, redis_url, put):
    put(gate_doc("active"))
    with Gate(AGENT, redis_url=redis_url) as gate:
        wait_subscribed(redis_client)
        assert gate.subscribed

    assert not gate.subscribed
    wait_until(lambda: dict(redis_client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) == 0, timeout=3)


def test_fallback_response_over_redis_is_the_documents_message_or_a_generic_one(make_gate, put, tmp_path):
    from firebreak_sdk import GENERIC_FALLBACK

    from .conftest import FALLBACK

    assert make_gate().fallback_response() == GENERIC_FALLBACK  # no key yet
    with Gate(AGENT, redis_url=f"unix://{tmp_path}/nothing.sock") as unreachable:
        assert unreachable.fallback_response() == GENERIC_FALLBACK

    put(gate_doc("killed", fallback_message=FALLBACK))
    assert make_gate().fallback_response() == FALLBACK


# --- only the server's word --------------------------------------------------------------------------------


def test_a_forged_publish_never_lets_a_killed_agent_run(make_gate, put, redis_client):
    """The attack of issue 11: an unsigned document with a huge version, published on the agent's channel."""
    put(gate_doc("killed", version=3, reason="looping on refunds"))
    gate = make_gate(max_staleness=0.05)
    wait_subscribed(redis_client)
    forged = json.dumps({**gate_doc("active"), "version": 10**12})
    redis_client.publish(CHANNEL, forged)
    redis_client.publish(CHANNEL, json.dumps({**signed(gate_doc("active")), "version": 10**12}))  # re-labelled
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        with pytest.raises(AgentKilled):
            gate.check()
    assert gate.state["version"] == 3


def test_an_unsigned_or_forged_document_in_redis_fails_closed(make_gate, put):
    gate = make_gate(subscribe=False, max_staleness=0)
    put(json.dumps(gate_doc("active")), publish=False)
    with pytest.raises(GateUnavailable, match="not a document the server signed"):
        gate.check()
    put(json.dumps({**signed(gate_doc("active")), "disabled_tools": []} | {"reason": "changed after signing"}))
    with pytest.raises(GateUnavailable, match="signature does not verify"):
        gate.check()


def test_a_replayed_document_older_than_the_window_is_refused(make_gate, put):
    old = signed_at(gate_doc("active", version=99), seconds_ago=120)
    gate = make_gate(subscribe=False, max_staleness=0)
    put(json.dumps(old), publish=False)
    with pytest.raises(GateUnavailable, match="outside the 60 s window"):
        gate.check()


def test_without_the_public_key_every_check_fails_closed_and_says_so(make_gate, put, monkeypatch):
    monkeypatch.delenv("FIREBREAK_GATE_PUBLIC_KEY")
    put(gate_doc("active"))
    gate = make_gate(subscribe=False)
    with pytest.raises(GateUnavailable, match="FIREBREAK_GATE_PUBLIC_KEY"):
        gate.check()
    with pytest.raises(GateUnavailable, match="not a gate public key"):
        make_gate(subscribe=False, public_key="not-a-key").check()
