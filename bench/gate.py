"""The gate benchmark: check latency over Redis and HTTP, and kill propagation to a separate agent process.

Usage: .venv/bin/python bench/gate.py [--checks N] [--http-checks N] [--kills N] [--http-kills N] [--seed N]

Needs only what ``make run`` installed once: it uses the project's database and Redis (the embedded ones
under var/ when DATABASE_URL / REDIS_URL are unset), migrates quietly, creates (idempotently) the agent
``bench-agent`` and the user ``bench-admin`` (group admin) with fresh keys named "bench" (revoking the
previous run's), starts gunicorn on a free loopback port, and stops it at the end. Every kill and resume
is a real gate change: each writes one audit row to ``bench-agent``'s log. The agent is left active.

Checks are ``gate.check(tool="lookup_order")``, the full check an agent makes before a tool call.
Propagation: the agent process (this file with ``--as-agent``, configured like any agent through
FIREBREAK_* variables) loops ``gate.check()`` and prints ``time.monotonic()`` when it raises AgentKilled;
this process notes ``time.monotonic()`` when the kill request is sent and when its response returns.
CLOCK_MONOTONIC is system-wide on Linux, so the readings of the two processes compare directly.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from firebreak_sdk import AgentKilled, FirebreakStop, Gate, GateUnavailable

from harness import ChildProcess, bench_user, django_setup, gate_front, gunicorn, quantiles, summary

AGENT = "bench-agent"
KEY_NAME = "bench"
TOOL = "lookup_order"
CHECK_P99_TARGET_MS = 1.0
PROPAGATION_P99_TARGET_MS = 50.0


# --- the agent process ------------------------------------------------------------------------------


def agent_main() -> None:
    """Loop ``gate.check()``; print ``killed <monotonic>`` on each kill and ``ready`` once checks pass again.

    Ends when stdin closes, so it never outlives the benchmark.
    """

    def exit_when_stdin_closes() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    gate = Gate.from_env(AGENT)
    if os.environ.get("FIREBREAK_SUBSCRIBED", "1") == "1":
        deadline = time.monotonic() + 10
        while not gate.subscribed:  # a kill before the subscription (or stream) is up would wait for a re-read
            if time.monotonic() > deadline:
                print("error: the gate subscription did not connect within 10 s", flush=True)
                return
            time.sleep(0.005)
    check = gate.check
    try:
        while True:
            while True:  # killed: wait for the resume
                try:
                    check()
                    break
                except AgentKilled:
                    time.sleep(0.0005)
            print("ready", flush=True)
            while True:  # passing: check as fast as the agent can
                try:
                    check()
                except AgentKilled:
                    seen = time.monotonic()
                    break
            print(f"killed {seen!r}", flush=True)
    except FirebreakStop as exc:
        print(f"error: {type(exc).__name__}: {exc}", flush=True)


class AgentProcess(ChildProcess):
    """The agent in its own process, started with this interpreter (this file with ``--as-agent``)."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__("the agent process", [sys.executable, str(Path(__file__).resolve()), "--as-agent"], env)

    def close(self, timeout: float = 5) -> None:
        super().close(timeout)


# --- set-up -------------------------------------------------------------------------------------------


@dataclass
class Setup:
    redis_url: str  # the gate's logical database, logged in as the bench agent's own read-only Redis user
    user: Any  # bench-admin
    user_key: str
    agent_key: str
    public_key: str  # FIREBREAK_GATE_PUBLIC_KEY


def leave_active(user) -> None:
    """Resume the bench agent and re-enable its tool if an earlier (interrupted) run left it stopped."""
    from django.db import close_old_connections  # after django_setup(), as every project import here

    from agents.models import Agent, GateState
    from agents.services import agent_resume, agent_tool_enable
    from core.actors import Actor

    close_old_connections()
    agent = Agent.objects.get(slug=AGENT)
    if agent.state != GateState.ACTIVE:
        agent_resume(agent=agent, actor=Actor.person(user), reason="bench: leave the bench agent active")
    if TOOL in agent.disabled_tools:
        agent_tool_enable(
            agent=agent, tool=TOOL, actor=Actor.person(user), reason="bench: leave the bench agent active"
        )


class Reconciler:
    """Stands in for beat while the benchmark runs: the gate reconciler every 2 s, which also signs the Redis
    copy again (agents reading Redis refuse a document older than their 60 s window)."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from django.db import connection  # after django_setup(), as every project import here

        from agents.gate import gate_reconcile

        while not self.stop.wait(self.every):
            gate_reconcile()
        connection.close()

    def __enter__(self) -> Reconciler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def prepare() -> Setup:
    from django.db.models import Q  # after django_setup(), as every project import here

    from agents.gate import gate_publish
    from agents.keys.redis_users import redis_url_for
    from agents.keys.services import api_key_create, api_key_revoke
    from agents.models import Agent, ApiKey, FleetGate
    from agents.services import agent_register
    from agents.signing import public_key_text
    from core.actors import Actor

    if FleetGate.load().stopped:
        sys.exit("the fleet is stopped, so every check raises: resume the fleet first (POST /api/v1/fleet/resume)")
    agent = Agent.objects.filter(slug=AGENT).first() or agent_register(
        slug=AGENT,
        name="Bench agent",
        actor=Actor.system("bench"),
        description="Used by bench/gate.py: killed and resumed a few hundred times per run.",
        environment="staging",
        allowed_tools=[TOOL],
    )
    user = bench_user()
    for old in ApiKey.objects.filter(Q(user=user) | Q(agent=agent), name=KEY_NAME, revoked_at__isnull=True):
        api_key_revoke(key=old, actor=Actor.system("bench"))  # its Redis user goes with it
    _, user_key = api_key_create(user=user, scopes=["api"], name=KEY_NAME)
    key, agent_key = api_key_create(agent=agent, scopes=["ingest", "gate"], name=KEY_NAME, redis=True)
    leave_active(user)
    agent.refresh_from_db()
    gate_publish([agent])  # the key exists even if Redis was flushed and no reconciler runs
    return Setup(redis_url_for(key, agent_key), user, user_key, agent_key, public_key_text())


# --- measuring ----------------------------------------------------------------------------------------


def measure(gate: Gate, n: int) -> tuple[list[float], int]:
    """``n`` timed checks (µs each) and how many failed closed (GateUnavailable)."""
    check, clock = gate.check, time.perf_counter_ns
    samples = [0.0] * n
    failed = 0
    for i in range(n):
        start = clock()
        try:
            check(tool=TOOL)
        except GateUnavailable:
            failed += 1
        samples[i] = (clock() - start) / 1000
    return samples, failed


def check_row(label: str, make_gate: Callable[[], Gate], n: int, *, subscribed: bool = False) -> float:
    """Measure and print one latency row; return its p99 in µs."""
    with make_gate() as gate:
        deadline = time.monotonic() + 5
        while subscribed and not gate.subscribed and time.monotonic() < deadline:
            time.sleep(0.005)
        measure(gate, min(n, 1000))  # warm up: connection, first read, caches
        samples, failed = measure(gate, n)
    q = quantiles(samples)
    note = f"  ({failed:,} failed closed)" if failed else ""
    print(
        f"check  {label:<55} n={n:<7,}  p50 {q['p50']:8.2f} µs  p99 {q['p99']:8.2f} µs  "
        f"p99.9 {q['p99.9']:8.2f} µs  max {q['max']:9.1f} µs{note}",
        flush=True,
    )
    return q["p99"]


@dataclass
class Kill:
    sent: float
    returned: float
    seen: float


def kill_run(
    base: str, user_key: str, agent_env: dict[str, str], n: int, rng: random.Random, *, max_pause: float
) -> list[Kill]:
    """``n`` kills of a running agent process; each resumed, and the agent passing checks, before the next.

    Before each kill a random pause up to ``max_pause`` seconds, so kills land at random points of the agent's
    loop (and, for an agent that re-reads its gate every second, at random points of that second).
    """
    kills: list[Kill] = []
    agent = AgentProcess(agent_env)
    headers = {"Authorization": f"Bearer {user_key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            agent.expect("ready", timeout=15)
            for _ in range(n):
                time.sleep(rng.uniform(0, max_pause))
                sent = time.monotonic()
                response = client.post(f"/api/v1/agents/{AGENT}/kill", json={"reason": "bench: kill propagation"})
                returned = time.monotonic()
                if response.status_code != 200:
                    raise RuntimeError(f"kill answered HTTP {response.status_code}: {response.text[:300]}")
                seen = float(agent.expect("killed", timeout=5).split()[1])
                kills.append(Kill(sent, returned, seen))
                response = client.post(f"/api/v1/agents/{AGENT}/resume", json={"reason": "bench"})
                if response.status_code != 200:
                    raise RuntimeError(f"resume answered HTTP {response.status_code}: {response.text[:300]}")
                agent.expect("ready", timeout=5)
    finally:
        agent.close()
    return kills


def kill_rows(label: str, kills: list[Kill]) -> tuple[float, float]:
    """Print the propagation rows; return the p99s (ms) of seen-returned and seen-sent."""
    after_return = [(k.seen - k.returned) * 1000 for k in kills]
    after_send = [(k.seen - k.sent) * 1000 for k in kills]
    round_trip = [(k.returned - k.sent) * 1000 for k in kills]
    early = sum(1 for d in after_return if d < 0)
    n = len(kills)
    p99s = []
    for what, values, note in (
        ("seen − kill response returned", after_return, f"  ({early}/{n} seen before the response returned)"),
        ("seen − kill request sent", after_send, ""),
        ("kill API round trip (returned − sent)", round_trip, ""),
    ):
        q = quantiles(values)
        p99s.append(q["p99"])
        print(
            f"kill   {label:<20} {what:<38} n={n:<4}  p50 {q['p50']:7.2f} ms  p99 {q['p99']:7.2f} ms  "
            f"max {q['max']:7.2f} ms{note}",
            flush=True,
        )
    return p99s[0], p99s[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=100_000, help="checks per Redis row and the HTTP default row")
    parser.add_argument("--http-checks", type=int, default=30_000, help="checks for the HTTP forced row (~5 ms each)")
    parser.add_argument("--kills", type=int, default=200, help="kills of an agent on the Redis transport")
    parser.add_argument("--http-kills", type=int, default=200, help="kills of an agent on the HTTP stream")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pause before each kill")
    parser.add_argument("--as-agent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_agent:
        agent_main()
        return
    if min(args.checks, args.http_checks, args.kills, args.http_kills) < 2:
        parser.error("every count must be at least 2")
    started = time.monotonic()
    rng = random.Random(args.seed)
    django_setup()
    setup = prepare()
    os.environ["FIREBREAK_GATE_PUBLIC_KEY"] = setup.public_key  # this process's gates verify with it too
    agent_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    agent_env["FIREBREAK_GATE_PUBLIC_KEY"] = setup.public_key
    try:
        with Reconciler(), gunicorn(2, 4) as (web, _), gate_front(web) as base:
            print(f"gate benchmark: agent {AGENT}, gate server {base} in front of gunicorn gthread 2×4 at {web}")
            print(f"  Redis as the agent's own read-only user: {setup.redis_url.split('@')[-1]}")
            redis_p99s = [
                check_row(
                    "redis default (copy trusted ≤ 1 s, subscribed)",
                    lambda: Gate(AGENT, redis_url=setup.redis_url),
                    args.checks,
                    subscribed=True,
                ),
                check_row(
                    "redis forced (max_staleness=0: one GET per check)",
                    lambda: Gate(AGENT, redis_url=setup.redis_url, max_staleness=0, subscribe=False),
                    args.checks,
                ),
            ]
            check_row(
                "http  default (the gate stream, copy trusted while it lives)",
                lambda: Gate(AGENT, url=base, api_key=setup.agent_key),
                args.checks,
                subscribed=True,
            )
            check_row(
                "http  forced (max_staleness=0: one GET + If-None-Match)",
                lambda: Gate(AGENT, url=base, api_key=setup.agent_key, max_staleness=0, subscribe=False),
                args.http_checks,
            )
            redis_env = {**agent_env, "FIREBREAK_REDIS_URL": setup.redis_url}
            kills = kill_run(base, setup.user_key, redis_env, args.kills, rng, max_pause=0.01)
            propagation = kill_rows("redis agent", kills)
            http_env = {**agent_env, "FIREBREAK_URL": base, "FIREBREAK_API_KEY": setup.agent_key}
            kills = kill_run(base, setup.user_key, http_env, args.http_kills, rng, max_pause=0.01)
            http_propagation = kill_rows("http agent (stream)", kills)
    finally:
        leave_active(setup.user)
    check_met = max(redis_p99s) <= CHECK_P99_TARGET_MS * 1000
    propagation_met = propagation[0] <= PROPAGATION_P99_TARGET_MS
    http_met = http_propagation[0] <= PROPAGATION_P99_TARGET_MS
    summary(
        [
            f"  check p99 ≤ {CHECK_P99_TARGET_MS:g} ms over Redis: {'met' if check_met else 'NOT met'} "
            f"(default {redis_p99s[0]:.2f} µs, forced GET {redis_p99s[1]:.2f} µs)",
            f"  kill propagation p99 ≤ {PROPAGATION_P99_TARGET_MS:g} ms: {'met' if propagation_met else 'NOT met'} "
            f"(seen − returned {propagation[0]:.2f} ms; seen − sent {propagation[1]:.2f} ms)",
            f"  kill propagation over the HTTP push path p99 ≤ {PROPAGATION_P99_TARGET_MS:g} ms: "
            f"{'met' if http_met else 'NOT met'} (seen − returned {http_propagation[0]:.2f} ms)",
        ],
        started,
    )


if __name__ == "__main__":
    main()
