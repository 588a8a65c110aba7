"""The LLM gateway's cost and its stop: added latency per model call, and kill → next call refused.

Starts the project's Firebreak (gunicorn behind the gate server, as ``make run`` serves it, on the embedded
services), the scripted OpenAI-compatible upstream of the tests (``tests/sdk/fake_openai_upstream.py``, its own
process) and ``firebreak-llm-gateway`` in front of it (its own process, gate subscribed, spans sent to Firebreak).

1. Added latency: ``--calls`` non-streaming chat completions straight to the upstream and as many through the
   gateway, interleaved one by one from one httpx client (so both see the same machine), after a warm-up. Prints
   p50/p99 of each and of the per-pair difference. Target: p99 added ≤ 2 ms.
   Judged as p99 through minus p99 direct (how far the gateway moves the tail); the per-pair difference's p99,
   which also holds both calls' independent scheduling noise, is printed too.
2. Kill → refused: ``--kills`` rounds of: an agent in another process (``gateway_caller.py``) calls through the
   gateway back to back, the benchmark sends ``POST …/kill`` through the API, the agent reports its first
   refused call; then resume. Prints how long from sending the kill (and from its answer) to that refusal.

    .venv/bin/python bench/llm_gateway.py [--calls 2000] [--kills 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from gate import Reconciler

from harness import (
    CLOCK_TICKS,
    ROOT,
    ChildProcess,
    django_setup,
    free_port,
    gate_front,
    gunicorn,
    quantiles,
    say,
    summary,
    warm_workers,
)

AGENT = "bench-llm-gateway"
UPSTREAM_SCRIPT = ROOT / "tests" / "sdk" / "fake_openai_upstream.py"
CALLER = ROOT / "bench" / "gateway_caller.py"
BODY = {"model": "scripted", "messages": [{"role": "user", "content": "hello there, how are you today"}]}


def prepare() -> tuple[str, str, str]:
    """The agent (active) and its ingest+gate key, an admin's API key, the gate's public key."""
    from agents.gate import gate_publish  # after django_setup(), as every project import here
    from agents.keys.services import api_key_create
    from agents.models import Agent, FleetGate
    from agents.services import agent_register
    from agents.signing import public_key_text
    from core.actors import Actor

    from harness import bench_user

    agent = Agent.objects.filter(slug=AGENT).first()
    if agent is None:
        agent = agent_register(slug=AGENT, name="Bench LLM gateway", actor=Actor.system("bench"), environment="staging")
    _, key = api_key_create(agent=agent, scopes=["ingest", "gate"], name="bench llm gateway")
    _, user_key = api_key_create(user=bench_user(), scopes=["api"], name="bench llm gateway")
    gate_publish(list(Agent.objects.all()), FleetGate.load())
    return key, user_key, public_key_text()


def wait_up(url: str, proc: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not answer {url}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (all its threads)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def added_latency(client: httpx.Client, direct: str, gateway: str, calls: int, pids: tuple[int, int]) -> list[str]:
    for _ in range(200):  # warm-up: connections, the gateway's session, both servers' code paths
        client.post(direct, json=BODY).raise_for_status()
        client.post(gateway, json=BODY).raise_for_status()
    straight, through, added = [], [], []
    cpu_before = [cpu_seconds(pid) for pid in pids]
    for _ in range(calls):
        start = time.perf_counter()
        client.post(direct, json=BODY).raise_for_status()
        middle = time.perf_counter()
        response = client.post(gateway, json=BODY)
        end = time.perf_counter()
        response.raise_for_status()
        straight.append((middle - start) * 1000)
        through.append((end - middle) * 1000)
        added.append(through[-1] - straight[-1])
    # Wall-clock tails on a shared 2-core machine are mostly other processes' turns; CPU per call is steadier.
    upstream_cpu = (cpu_seconds(pids[0]) - cpu_before[0]) / (2 * calls) * 1000  # it served both sides
    gateway_cpu = (cpu_seconds(pids[1]) - cpu_before[1]) / calls * 1000
    d, g, a = quantiles(straight), quantiles(through), quantiles(added)
    tail = g["p99"] - d["p99"]
    say(
        f"CPU per call: upstream {upstream_cpu:.2f} ms, gateway {gateway_cpu:.2f} ms "
        "(with its span, sent to Firebreak)",
        f"direct to the upstream: p50 {d['p50']:.2f} ms, p99 {d['p99']:.2f} ms ({calls} calls)",
        f"through the gateway: p50 {g['p50']:.2f} ms, p99 {g['p99']:.2f} ms ({calls} calls, interleaved)",
        f"added by the gateway, per pair: p50 {a['p50']:.2f} ms, p99 {a['p99']:.2f} ms",
        f"p99 through the gateway − p99 direct: {tail:.2f} ms",
    )
    return [
        f"  added latency per model call: p99 through − p99 direct {tail:.2f} ms (target ≤ 2 ms); per pair p50 "
        f"{a['p50']:.2f} ms, p99 {a['p99']:.2f} ms",
        f"  gateway CPU per model call: {gateway_cpu:.2f} ms",
    ]


def kill_to_refusal(api: httpx.Client, gateway: str, env: dict[str, str], rounds: int) -> list[str]:
    """Kill the agent while another process calls through the gateway back to back; resume; ``rounds`` times."""
    caller = ChildProcess("the calling agent", [sys.executable, str(CALLER), "llm", gateway], env)
    from_send, from_answer = [], []
    try:
        warm_workers(api, AGENT)  # every gunicorn worker has served a kill before one is timed
        for _ in range(rounds):
            caller.send("go")
            caller.expect("running", timeout=30)
            time.sleep(0.2)  # the agent is mid-stream of successful calls
            sent = time.perf_counter()
            api.post(f"/api/v1/agents/{AGENT}/kill", json={"reason": "bench: kill to refusal"}).raise_for_status()
            answered = time.perf_counter()
            _, at, text = caller.expect("refused", timeout=30).split(" ", 2)
            if "killed" not in text:
                raise RuntimeError(f"refused, but not by the kill: {text}")
            from_send.append((float(at) - sent) * 1000)
            from_answer.append(max(0.0, float(at) - answered) * 1000)
            api.post(f"/api/v1/agents/{AGENT}/resume", json={"reason": "bench"}).raise_for_status()
    finally:
        caller.close(timeout=15)
    s, r = quantiles(from_send), quantiles(from_answer)
    say(
        f"kill sent → next call refused: p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms, max {s['max']:.1f} ms "
        f"({rounds} kills, the agent calling back to back from another process)",
        f"kill answered → next call refused: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms "
        "(0: refused before the API answered)",
    )
    return [
        f"  kill sent → next model call refused: p99 {s['p99']:.1f} ms; from the kill's answer p99 {r['p99']:.1f} ms "
        "(target ≤ 50 ms)"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    started = time.monotonic()
    django_setup()
    key, user_key, public_key = prepare()
    upstream_port, gateway_port = free_port(), free_port()
    upstream_url, gateway_url = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{gateway_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
    lines: list[str] = []
    with Reconciler(), gunicorn(3, 4) as (web, _), gate_front(web) as base:
        upstream = subprocess.Popen([sys.executable, str(UPSTREAM_SCRIPT), str(upstream_port)], env=env)
        env |= {"FIREBREAK_URL": base, "FIREBREAK_API_KEY": key, "FIREBREAK_GATE_PUBLIC_KEY": public_key}
        command = [sys.executable, "-m", "firebreak_sdk.gateways.llm", "--agent", AGENT]
        command += ["--upstream", f"{upstream_url}/v1", "--listen", f"127.0.0.1:{gateway_port}"]
        gateway = subprocess.Popen(command, env=env)
        try:
            wait_up(f"{upstream_url}/_stats", upstream, "the upstream")
            wait_up(f"{gateway_url}/v1/models", gateway, "the gateway")
            headers = {"authorization": f"Bearer {user_key}"}
            with httpx.Client(timeout=10) as client, httpx.Client(base_url=base, headers=headers, timeout=10) as api:
                api.post(f"/api/v1/agents/{AGENT}/resume", json={"reason": "bench"})  # a previous run's kill
                direct = f"{upstream_url}/v1/chat/completions"
                through = f"{gateway_url}/v1/chat/completions"
                say(f"LLM gateway: {AGENT}, upstream {upstream_url}, gateway {gateway_url}, Firebreak {base}")
                lines += added_latency(client, direct, through, args.calls, (upstream.pid, gateway.pid))
                lines += kill_to_refusal(
                    api, through, {k: v for k, v in env.items() if k != "FIREBREAK_API_KEY"}, args.kills
                )
        finally:
            for proc in (gateway, upstream):
                proc.terminate()
                proc.wait(timeout=15)
    summary(lines, started)


if __name__ == "__main__":
    main()
