"""The MCP gateway's cost and its stop: added latency per tool call, and kill → next call refused.

Usage: .venv/bin/python bench/mcp_gateway.py [--calls 1000] [--kills 20]

Runs in a scratch database (``firebreak_bench_mcp``, made and dropped on the project's PostgreSQL) and its own
Redis logical database, with the servers of ``make run``: the gate server (uvicorn) in front of gunicorn. The
gateway (``firebreak-mcp-gateway``, a real process) gets only FIREBREAK_URL, its agent's key and the public
key, so it hears the gate over the gate stream, and sends a tool span per call to ingest.

- Added latency: one MCP client holds two stdio sessions, one straight to the MCP server
  (``tests/sdk/mcp_echo_server.py``), one through the gateway to another copy of it; ``--calls`` calls of
  ``echo`` each, interleaved (direct, gateway, direct, ...), after a warm-up. Reported: p50/p99 of each path
  and of the added latency (each gateway call minus the direct call just before it).
- Added latency is judged as p99 through the gateway minus p99 direct (how much the gateway moves the tail);
  the p99 of the per-pair difference is printed too, a stricter figure that also holds the two calls'
  independent scheduling noise on a shared 2-core machine.
- Kill: while an agent in another process (``gateway_caller.py``, its own gateway) calls back to back, the
  benchmark kills it, alternately over the API and by calling ``agent_kill`` (the service the API calls) in
  this process; the figure is the time to the first refused call's answer, from the kill sent, from the kill
  returned (0 when the refusal came first), and from the kill's publish on Redis (heard by a subscriber in this
  process, as the gate server hears it). ``--kills`` rounds of each, with a resume between them.
- The gateway process's CPU time per call, a figure the machine's other load inflates less than latency.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import gate_push
import httpx
from gate import Reconciler
from mcp import ClientSession, StdioServerParameters, stdio_client

from harness import ChildProcess, _proc_stats, django_setup, gate_front, gunicorn, quantiles, summary, warm_workers

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "sdk" / "mcp_echo_server.py"
CALLER = ROOT / "bench" / "gateway_caller.py"
GATEWAY = str(Path(sys.executable).with_name("firebreak-mcp-gateway"))
AGENT = "mcp-bench"
REDIS_DB = 10  # the bench's own logical database
ADDED_P99_TARGET_MS = 2.0
KILL_P99_TARGET_MS = 50.0


def prepare() -> tuple[str, str, str]:
    """Migrate the scratch database; the agent with its ingest+gate key; an admin's API key; the public key."""
    from agents.keys.services import api_key_create  # after django_setup(), as every project import here
    from agents.services import agent_register
    from agents.signing import public_key_text
    from core.actors import Actor

    from harness import bench_user

    agent = agent_register(slug=AGENT, name="MCP bench", actor=Actor.system("bench"), allowed_tools=["echo"])
    _, agent_key = api_key_create(agent=agent, scopes=["ingest", "gate"], name="bench")
    _, user_key = api_key_create(user=bench_user(), scopes=["api"], name="bench")
    return agent_key, user_key, public_key_text()


def kill_in_process() -> None:
    """``agent_kill`` as the API calls it, from this process: commit, Redis copy, publish; no HTTP in between."""
    from agents.models import Agent  # after django_setup()
    from agents.services import agent_kill
    from core.actors import Actor

    agent_kill(agent=Agent.objects.get(slug=AGENT), actor=Actor.system("bench"), reason="bench: kill")


class KillHeard:
    """A Redis subscriber to the agent's gate channel, as the gate server is: when each kill was published."""

    def __init__(self) -> None:
        from agents.gate import CHANNEL  # after django_setup()
        from core.redis import get_redis

        self.at: list[float] = []
        self.pubsub = get_redis().pubsub()
        self.pubsub.subscribe(CHANNEL.format(slug=AGENT))
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        for message in self.pubsub.listen():
            if message["type"] == "message" and b'"state":"killed"' in message["data"].replace(b" ", b""):
                self.at.append(time.perf_counter())

    def after(self, moment: float) -> float | None:
        return next((t for t in self.at if t >= moment), None)


def child_cpu(marker: bytes) -> float:
    """CPU seconds used so far by this process's children whose command line contains ``marker``."""
    total = 0.0
    for pid, (_, ppid, cpu) in _proc_stats().items():
        if ppid == os.getpid():
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                    total += cpu
            except OSError:
                continue
    return total


def gateway_cpu() -> float:
    return child_cpu(b"firebreak-mcp-gateway")


def server_cpu() -> float:
    """The MCP server the direct path calls (the gateway's own copy is its child, not this process's)."""
    return child_cpu(b"mcp_echo_server.py")


def text_of(result: Any) -> str:
    return str(getattr(result.content[0], "text", "")) if result.content else ""


def gateway_env(base: str, agent_key: str, public_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    return env | {"FIREBREAK_URL": base, "FIREBREAK_API_KEY": agent_key, "FIREBREAK_GATE_PUBLIC_KEY": public_key}


async def measure(base: str, agent_key: str, public_key: str, n_calls: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    direct = StdioServerParameters(command=sys.executable, args=[str(SERVER)], env=env)
    arguments = ["--agent", AGENT, "--", sys.executable, str(SERVER)]
    fronted = StdioServerParameters(command=GATEWAY, args=arguments, env=gateway_env(base, agent_key, public_key))
    out: dict[str, list[float]] = {"direct": [], "gateway": [], "added": []}
    async with (
        stdio_client(direct) as (dr, dw),
        ClientSession(dr, dw) as straight,
        stdio_client(fronted) as (gr, gw),
        ClientSession(gr, gw) as through,
    ):
        await straight.initialize()
        await through.initialize()
        args = {"text": "order 42: delivered, total $30"}
        for _ in range(100):  # warm-up: connections, caches, the gate read
            await straight.call_tool("echo", args)
            result = await through.call_tool("echo", args)
            if result.is_error:
                raise RuntimeError(f"the gateway refused the warm-up call: {text_of(result)}")
        cpu_before, server_before = gateway_cpu(), server_cpu()
        for _ in range(n_calls):
            t0 = time.perf_counter()
            await straight.call_tool("echo", args)
            t1 = time.perf_counter()
            result = await through.call_tool("echo", args)
            t2 = time.perf_counter()
            if result.is_error:
                raise RuntimeError(f"a call through the gateway failed: {text_of(result)}")
            out["direct"].append((t1 - t0) * 1000)
            out["gateway"].append((t2 - t1) * 1000)
            out["added"].append(((t2 - t1) - (t1 - t0)) * 1000)
        out["cpu"] = [(gateway_cpu() - cpu_before) / n_calls * 1000]
        out["server_cpu"] = [(server_cpu() - server_before) / n_calls * 1000]

    return out


def kills(base: str, agent_key: str, user_key: str, public_key: str, n_kills: int) -> dict[str, list[float]]:
    """Kill the agent while another process calls through the gateway back to back; resume; ``n_kills`` rounds
    over the API and as many through ``agent_kill`` in this process."""
    command = [sys.executable, str(CALLER), "mcp", GATEWAY, "--agent", AGENT, "--", sys.executable, str(SERVER)]
    caller = ChildProcess("the calling agent", command, gateway_env(base, agent_key, public_key))
    heard = KillHeard()
    out: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {user_key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
            warm_workers(api, AGENT)  # every gunicorn worker has served a kill before one is timed
            for round_ in range(2 * n_kills):
                by_api = round_ % 2 == 0  # alternate: over the API (gunicorn), and the service called in this process
                caller.send("go")
                caller.expect("running", timeout=30)
                time.sleep(0.2)  # the agent is mid-stream of successful calls
                sent = time.perf_counter()
                if by_api:
                    response = api.post(f"/api/v1/agents/{AGENT}/kill", json={"reason": "bench: kill"})
                    if response.status_code != 200:
                        raise RuntimeError(f"kill answered {response.status_code}: {response.text[:300]}")
                else:
                    kill_in_process()
                returned = time.perf_counter()
                _, at, text = caller.expect("refused", timeout=30).split(" ", 2)
                if "was killed" not in text:
                    raise RuntimeError(f"refused, but not by the kill: {text}")
                refused = float(at)
                prefix = "kill_api" if by_api else "kill_service"
                out.setdefault(prefix, []).append((refused - sent) * 1000)
                out.setdefault(f"{prefix}_after", []).append(max(0.0, refused - returned) * 1000)
                published = heard.after(sent)
                if published is None:
                    raise RuntimeError("the kill was never published")
                out.setdefault("kill_published", []).append((refused - published) * 1000)
                response = api.post(f"/api/v1/agents/{AGENT}/resume", json={"reason": "bench: next round"})
                if response.status_code != 200:
                    raise RuntimeError(f"resume answered {response.status_code}: {response.text[:300]}")
    finally:
        caller.close(timeout=15)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls on each path, interleaved")
    parser.add_argument("--kills", type=int, default=20, help="kill → refused rounds")
    args = parser.parse_args()
    started = time.monotonic()
    gate_push.SCRATCH_DB = "firebreak_bench_mcp"  # its scratch helpers, on a database of this benchmark's own
    url = gate_push.scratch_database()
    os.environ["DATABASE_URL"] = url
    os.environ["FIREBREAK_REDIS_DB"] = str(REDIS_DB)
    django_setup()
    from core.redis import get_redis  # after django_setup()

    get_redis().flushdb()
    try:
        agent_key, user_key, public_key = prepare()
        with Reconciler(), gunicorn(3, 4, timeout=120) as (web, _), gate_front(web) as base:
            print(
                f"MCP gateway benchmark: stdio, gate server {base} in front of gunicorn gthread 3×4 "
                "(as make run serves it)",
                flush=True,
            )
            out = anyio.run(measure, base, agent_key, public_key, args.calls)
            out |= kills(base, agent_key, user_key, public_key, args.kills)
    finally:
        from django.db import connections  # after django_setup()

        connections.close_all()
        gate_push.drop_scratch(url)
    for label, key in (("direct client→server", "direct"), ("through the gateway", "gateway"), ("added", "added")):
        q = quantiles(out[key])
        print(
            f"tools/call {label:<22} n={len(out[key]):,}  p50 {q['p50']:6.3f} ms  p99 {q['p99']:6.3f} ms  "
            f"max {q['max']:7.3f} ms",
            flush=True,
        )
    print(
        f"CPU per call: gateway process {out['cpu'][0]:.3f} ms (its tracer and gate stream included), "
        f"the MCP server itself {out['server_cpu'][0]:.3f} ms",
        flush=True,
    )
    for label, key in (
        ("API request sent", "kill_api"),
        ("API response returned", "kill_api_after"),
        ("agent_kill() called", "kill_service"),
        ("agent_kill() returned", "kill_service_after"),
        ("kill published", "kill_published"),
    ):
        if len(out.get(key, [])) < 2:
            continue
        q = quantiles(out[key])
        print(
            f"kill → next call refused, from the {label:<22} n={len(out[key])}  p50 {q['p50']:6.1f} ms  "
            f"p99 {q['p99']:6.1f} ms  max {q['max']:6.1f} ms",
            flush=True,
        )
    tail = quantiles(out["gateway"])["p99"] - quantiles(out["direct"])["p99"]
    paired = quantiles(out["added"])["p99"]
    print(f"tools/call p99 through the gateway − p99 direct: {tail:.3f} ms", flush=True)
    kill = quantiles(out["kill_api"])["p99"]
    summary(
        [
            f"  added latency per tool call p99 ≤ {ADDED_P99_TARGET_MS:g} ms: "
            f"{'met' if tail <= ADDED_P99_TARGET_MS else 'NOT met'} (p99 through − p99 direct {tail:.3f} ms; "
            f"p99 of the per-pair difference {paired:.3f} ms)",
            f"  kill → next call refused p99 ≤ {KILL_P99_TARGET_MS:g} ms: "
            f"{'met' if kill <= KILL_P99_TARGET_MS else 'NOT met'} ({kill:.1f} ms from the kill API request sent, "
            "the agent calling from another process)",
        ],
        started,
    )


if __name__ == "__main__":
    main()
