"""The gate at fleet scale: one fleet stop to N open gate streams, and gate reads while ingest runs flat out.

Usage: .venv/bin/python bench/gate_push.py [--streams 1000] [--agents 100] [--rounds 5] [--read-seconds 20]
                                           [--ingest-spans 200000]

Runs in a scratch database (``firebreak_bench_gate``, made and dropped on the project's PostgreSQL) and its
own Redis logical database, so its agents and fleet stops never touch the project's. The servers are those
of ``make run``: the gate server (uvicorn) in front of gunicorn (gthread 3x4).

- Streams: a listener process opens ``--streams`` gate streams spread over ``--agents`` agents (each with
  its own key), then each round the benchmark stops the fleet over the API and notes when the response
  returned; the listener notes, per stream, when the stopped document arrived (CLOCK_MONOTONIC is
  system-wide). Then the fleet resumes and the listener waits for every stream to say so.
- Reads under load: an SDK gate with ``max_staleness=0`` (one GET per check) reads through the gate server,
  then straight from gunicorn (the Django view, what served gate reads before), each while the ingest
  sender posts OTLP batches through the front as fast as 4 connections go. Counted: latency, and how many
  checks failed closed (``GateUnavailable``) though the gate was healthy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import psycopg
from firebreak_sdk import Gate, GateUnavailable
from gate import Reconciler

from harness import ChildProcess, django_setup, gate_front, gunicorn, quantiles, summary
from payloads import encode_bodies, record_spans
from sender import KEY_ENV, Sender, sender_command, write_bodies

ROOT = Path(__file__).resolve().parent.parent
SCRATCH_DB = "firebreak_bench_gate"
REDIS_DB = 11  # the bench's own logical database: its fleet key and gate keys never meet the project's
STREAM_P99_TARGET_MS = 200.0
READ_P99_TARGET_MS = 50.0


# --- the listener process ---------------------------------------------------------------------------------


async def _open_stream(host: str, port: int, slug: str, key: str, on_doc: Callable[[float, bool], None]) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write(
        f"GET /api/v1/agents/{slug}/gate/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream of {slug} answered {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    chunked = True
    while True:
        line = await reader.readline()
        if not line:
            return
        if chunked and line.strip() and all(c in b"0123456789abcdefABCDEF\r\n" for c in line):
            continue  # a chunk-size line of the chunked body
        if line.startswith(b"data: "):
            on_doc(time.monotonic(), b'"fleet_stopped":true' in line)


async def listener_main(url: str, plan: list[tuple[str, str]]) -> None:
    """Hold one stream per (slug, key) of ``plan``; report when each saw the fleet stop, round after round."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    n = len(plan)
    stopped_at: list[float | None] = [None] * n
    active = [False] * n
    changed = asyncio.Event()

    def handler(i: int) -> Callable[[float, bool], None]:
        def on_doc(at: float, stopped: bool) -> None:
            if stopped and stopped_at[i] is None:
                stopped_at[i] = at
            active[i] = not stopped
            changed.set()

        return on_doc

    tasks = [asyncio.create_task(_open_stream(host, port, slug, key, handler(i))) for i, (slug, key) in enumerate(plan)]
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while True:
        while not all(active):  # every stream open and active
            changed.clear()
            failed = [t for t in tasks if t.done()]
            if failed:
                print(f"error: {len(failed)} streams ended: {failed[0].exception()!r}", flush=True)
                return
            await asyncio.wait_for(changed.wait(), timeout=60)
        stopped_at[:] = [None] * n
        print("ready", flush=True)
        if not await stdin.readline():
            return
        deadline = time.monotonic() + 30
        while not all(stopped_at) and time.monotonic() < deadline:
            changed.clear()
            await asyncio.wait_for(changed.wait(), timeout=30)
        print("seen " + json.dumps(stopped_at), flush=True)


# --- set-up -----------------------------------------------------------------------------------------------


def scratch_database() -> str:
    """Make the scratch database on the project's PostgreSQL (started if needed); return its DATABASE_URL."""
    if os.environ.get("DATABASE_URL"):
        base = os.environ["DATABASE_URL"]
        admin_url, url = base, base.rsplit("/", 1)[0] + "/" + SCRATCH_DB
    else:
        sys.path.insert(0, str(ROOT))  # no Django yet: the embedded starter only
        from firebreak import embedded

        var = Path(os.environ.get("FIREBREAK_VAR_DIR", ROOT / "var"))
        info = embedded.ensure_postgres(var)
        host = f"{quote(info.socket_dir, safe='')}:{info.port}"
        admin_url, url = f"postgres://postgres@{host}/postgres", f"postgres://postgres@{host}/{SCRATCH_DB}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    return url


def drop_scratch(url: str) -> None:
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')


def _libpq(url: str) -> str:
    import dj_database_url  # the settings' own parser, to read the socket form the same way

    conf = dj_database_url.parse(url)
    return f"host={conf['HOST']} port={conf['PORT'] or 5432} user={conf['USER']} dbname={conf['NAME']}"


def prepare(n_agents: int) -> tuple[list[tuple[str, str]], str, str]:
    """Migrate the scratch database; agents with keys; an admin's key. Returns (agents' slugs and keys), user key."""
    from django.core.management import call_command  # after django_setup(), as every project import here

    from agents.gate import gate_publish
    from agents.keys.services import api_key_create
    from agents.models import Agent, FleetGate
    from agents.services import agent_register
    from agents.signing import public_key_text
    from core.actors import Actor

    from harness import bench_user

    call_command("migrate", verbosity=0)
    actor = Actor.system("bench")
    agents = [
        agent_register(slug=f"fleet-{i:04d}", name=f"Fleet agent {i}", actor=actor, environment="staging")
        for i in range(n_agents)
    ]
    keys = [(a.slug, api_key_create(agent=a, scopes=["gate"], name="bench")[1]) for a in agents]
    gate_publish(list(Agent.objects.all()), FleetGate.load())
    _, user_key = api_key_create(user=bench_user(), scopes=["api"], name="bench")
    return keys, user_key, public_key_text()


# --- the measurements -------------------------------------------------------------------------------------


def stream_rounds(
    base: str, plan: list[tuple[str, str]], user_key: str, rounds: int
) -> tuple[list[float], list[float]]:
    """Per stream and round: (seen - fleet stop response returned, seen - fleet stop request sent) in ms."""

    listener = ChildProcess(
        "the stream listener",
        [sys.executable, str(Path(__file__).resolve()), "--as-listener", base],
        {**os.environ, "BENCH_PLAN": json.dumps(plan)},
    )
    after_return: list[float] = []
    after_send: list[float] = []
    headers = {"Authorization": f"Bearer {user_key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for _ in range(rounds):
                listener.expect("ready", timeout=120)
                listener.send("go")
                sent = time.monotonic()
                response = client.post("/api/v1/fleet/stop", json={"reason": "bench: fleet stop to every stream"})
                returned = time.monotonic()
                if response.status_code != 200:
                    raise RuntimeError(f"fleet stop answered {response.status_code}: {response.text[:300]}")
                seen = json.loads(listener.expect("seen", timeout=60)[5:])
                missing = sum(1 for s in seen if s is None)
                if missing:
                    raise RuntimeError(f"{missing} of {len(seen)} streams never saw the fleet stop")
                after_return += [(s - returned) * 1000 for s in seen]
                after_send += [(s - sent) * 1000 for s in seen]
                response = client.post("/api/v1/fleet/resume", json={"reason": "bench"})
                if response.status_code != 200:
                    raise RuntimeError(f"fleet resume answered {response.status_code}: {response.text[:300]}")
            listener.expect("ready", timeout=120)
    finally:
        listener.close(timeout=10)
    return after_return, after_send


def reads_under_load(url: str, slug: str, key: str, bodies: Path, warm: Path, ingest_url: str, seconds: float):
    """(latencies ms, GateUnavailable count, spans/s acked) for SDK reads of ``url`` during an ingest flood."""
    sender = Sender(sender_command(ingest_url, bodies, warm, 4), {**os.environ, KEY_ENV: key})
    samples: list[float] = []
    unavailable = 0
    try:
        sender.expect("ready", timeout=120)
        sender.expect("warmed", timeout=300)
        sender.go()
        deadline = time.monotonic() + seconds
        with Gate(slug, url=url, api_key=key, max_staleness=0, subscribe=False, timeout=0.5) as gate:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    gate.check()
                except GateUnavailable:
                    unavailable += 1
                samples.append((time.perf_counter() - start) * 1000)
                time.sleep(0.005)
        done = sender.expect("done", timeout=3600)
    finally:
        sender.close(timeout=10)
    acked_rate = done["acked"] / max(done["t_end"] - done["t0"], 1e-9)
    return samples, unavailable, acked_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--read-seconds", type=float, default=20.0)
    parser.add_argument("--ingest-spans", type=int, default=200_000, help="spans the sender posts in each read phase")
    parser.add_argument("--as-listener", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_listener:
        asyncio.run(listener_main(args.as_listener, [tuple(p) for p in json.loads(os.environ["BENCH_PLAN"])]))
        return
    started = time.monotonic()
    url = scratch_database()
    os.environ["DATABASE_URL"] = url
    os.environ["FIREBREAK_REDIS_DB"] = str(REDIS_DB)
    django_setup()
    from core.redis import get_redis  # after django_setup()

    get_redis().flushdb()  # the bench's own logical database: a fresh scratch database needs a fresh gate copy
    try:
        keys, user_key, public_key = prepare(args.agents)
        os.environ["FIREBREAK_GATE_PUBLIC_KEY"] = public_key
        plan = [keys[i % len(keys)] for i in range(args.streams)]
        with tempfile.TemporaryDirectory() as tmp:
            spans = record_spans(args.ingest_spans + 2_000, seed=3)
            warm, main_bodies = Path(tmp, "warm"), Path(tmp, "main")
            write_bodies(warm, encode_bodies(spans[:2_000], 500))
            write_bodies(main_bodies, encode_bodies(spans[2_000:], 500))
            from agents.keys.services import api_key_create  # after django_setup()
            from agents.models import Agent

            ingest_agent = Agent.objects.get(slug=keys[0][0])
            _, ingest_key = api_key_create(agent=ingest_agent, scopes=["ingest", "gate"], name="bench")
            with Reconciler(), gunicorn(3, 4, timeout=120) as (web, _), gate_front(web) as base:
                print(f"gate push benchmark: gate server {base} in front of gunicorn gthread 3×4 ({web})", flush=True)
                after_return, after_send = stream_rounds(base, plan, user_key, args.rounds)
                for what, values in (("response returned", after_return), ("request sent", after_send)):
                    q = quantiles(values)
                    print(
                        f"fleet stop → {args.streams} streams ({args.agents} agents), {args.rounds} rounds: "
                        f"seen − {what:<17} p50 {q['p50']:7.1f} ms  p99 {q['p99']:7.1f} ms  max {q['max']:7.1f} ms",
                        flush=True,
                    )
                reads = {}
                for label, target in (("gate server", base), ("gunicorn (Django view)", web)):
                    samples, unavailable, rate = reads_under_load(
                        target, ingest_agent.slug, ingest_key, main_bodies, warm, f"{base}/v1/traces", args.read_seconds
                    )
                    r = quantiles(samples)
                    reads[label] = (r, unavailable)
                    print(
                        f"gate read via {label:<24} during ingest ({rate:,.0f} spans/s acked): n={len(samples):,}  "
                        f"p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms  max {r['max']:.1f} ms  "
                        f"GateUnavailable {unavailable}",
                        flush=True,
                    )
    finally:
        from django.db import connections  # after django_setup()

        connections.close_all()
        drop_scratch(url)
    front, front_unavailable = reads["gate server"]
    stream_p99 = quantiles(after_send)["p99"]
    summary(
        [
            f"  fleet stop to {args.streams} streams p99 ≤ {STREAM_P99_TARGET_MS:g} ms: "
            f"{'met' if stream_p99 <= STREAM_P99_TARGET_MS else 'NOT met'} "
            f"({stream_p99:.1f} ms after the request was sent, which counts the API's own work too)",
            f"  gate read p99 ≤ {READ_P99_TARGET_MS:g} ms during ingest, no GateUnavailable: "
            f"{'met' if front['p99'] <= READ_P99_TARGET_MS and not front_unavailable else 'NOT met'} "
            f"({front['p99']:.2f} ms, {front_unavailable} unavailable)",
        ],
        started,
    )


if __name__ == "__main__":
    main()
