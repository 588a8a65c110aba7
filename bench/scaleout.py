"""Past one machine, shown: two web stacks and two Celery workers on one PostgreSQL and Redis, as they would scale.

Usage: .venv/bin/python bench/scaleout.py [--spans 30000] [--batch 500] [--kills 5] [--reads 20]

Runs ``make run``'s processes twice over on the project's database and Redis (the embedded ones under var/ when
DATABASE_URL / REDIS_URL are unset): web 1 and web 2 are each a gate server (uvicorn) in front of its own
gunicorn (gthread 3x4), and two Celery workers (``--concurrency 2``, as ``make run``) share the one queue.

- Ingest: GenAI agent runs recorded with the OpenTelemetry SDK (bench/payloads.py), packed whole runs to an
  OTLP protobuf request (about ``--batch`` spans), posted by sender processes over 4 connections each. First
  ``--spans`` spans through web 1 alone, then as many through web 1 and web 2 at once (half each), in the same
  run; spans/s is end to end (first request to last span counted in PostgreSQL), with the CPU seconds of each
  group of processes. Detection is on: each phase waits until the queue is empty.
- Detection once: every batch's detection task must have succeeded exactly once across the two workers (their
  logs), and each request carries one two-span run calling ``bench_marker`` (outside the agent's allowed
  tools), which must have raised one ``tool_not_allowed`` alert, counted once (detected twice, it counts 2).
- The stop: an agent process (the SDK, ``Gate`` over HTTP, trusting its copy for as long as the stream is
  alive) listens on web 2's gate stream while the agent is killed ``--kills`` times through web 1's API (and
  resumed); the figure is the time from the kill request to the SDK raising ``AgentKilled``.
- Sessions: a person logged in once reads the trace list through both web stacks (a session made on one is
  good on the other); ``GET /traces/`` latency through each, idle and while both take ingest.

The spans belong to the agent ``bench-scaleout`` (its traces and alerts deleted before and after); every
detector's rule is "notify" for it, so the run declares no incident and pauses nothing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from firebreak_sdk import AgentKilled, Gate
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness import (
    ROOT,
    TOOLS,
    ChildProcess,
    CpuSnapshot,
    bench_user,
    cpu_line,
    cpu_snapshot,
    descendants,
    django_setup,
    gate_front,
    gunicorn,
    percentile,
    postgres_pids,
    say,
    summary,
    wait_quiet,
    wait_stored,
)
from payloads import record_spans
from sender import KEY_ENV, Sender, sender_command, write_bodies
from throughput import delete_bench_traces, stored_steps

AGENT = "bench-scaleout"
MARKER_TOOL = "bench_marker"  # outside the agent's allowed tools: each request carries one run that calls it
CONNECTIONS = 4  # per sender, as bench/ingest.py
WARMUP_BODIES = 6  # per web stack, untimed: every gunicorn worker has served ingest before the timed phase
SUCCEEDED = re.compile(r"Task incidents\.tasks\.detect_batch_task\[([0-9a-f-]+)\] succeeded")


# --- the agent process (run as a child: python bench/scaleout.py --listen URL) -----------------------------


def listen_main(url: str) -> None:
    """Hold a gate on ``url``'s stream; print ``ready``, then ``killed <t>`` / ``open <t>`` (CLOCK_MONOTONIC,
    system-wide) each time a check's answer changes. Checks are local while the stream is alive (the copy is
    trusted for an hour otherwise): the stop can only arrive through the stream. Ends when stdin closes."""
    gate = Gate(AGENT, url=url, api_key=os.environ[KEY_ENV], max_staleness=3600.0)
    deadline = time.monotonic() + 30
    gate.check()  # the first read
    while not gate.subscribed:
        if time.monotonic() > deadline:
            print("error: the gate stream did not connect", flush=True)
            return
        time.sleep(0.01)
    done = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    print("ready", flush=True)
    is_open = True
    while not done.is_set():
        try:
            gate.check()
            now_open = True
        except AgentKilled:
            now_open = False
        if now_open != is_open:
            print(f"{'open' if now_open else 'killed'} {time.monotonic()}", flush=True)
            is_open = now_open
        time.sleep(0.0005)
    gate.close()


# --- set-up -----------------------------------------------------------------------------------------------


def prepare():
    """The agent (allowed tools without FORBIDDEN_TOOL, every detector's rule "notify", active, no traces or
    alerts of an earlier run), its fresh key (ingest, gate), a person's key (api) and a session cookie."""
    from django.test import Client  # after django_setup(), as every project import here
    from django.utils import timezone

    from agents.keys.services import api_key_create
    from agents.models import Agent, ApiKey, GateState
    from agents.services import agent_gate_settings_set, agent_register, agent_resume
    from core.actors import Actor
    from incidents.alerts.services import detector_setting_save
    from incidents.detection.base import registry
    from incidents.models import Alert

    user = bench_user()
    actor = Actor.person(user)
    agent = Agent.objects.filter(slug=AGENT).first() or agent_register(
        slug=AGENT,
        name="Bench scale-out agent",
        actor=actor,
        description="Used by bench/scaleout.py: its traces and alerts are deleted after each run.",
        environment="staging",
        allowed_tools=list(TOOLS),
    )
    agent_gate_settings_set(agent=agent, actor=actor, reason="bench/scaleout.py", allowed_tools=list(TOOLS))
    agent.refresh_from_db()
    if agent.state != GateState.ACTIVE:
        agent_resume(agent=agent, actor=actor, reason="bench/scaleout.py starts")
    for name, spec in registry.items():
        if spec.kind == "streaming":
            detector_setting_save(detector=name, agent=agent, enabled=True, thresholds={}, rule="notify", actor=actor)
    Alert.objects.filter(agent=agent).delete()
    delete_bench_traces(agent, vacuum=True)
    ApiKey.objects.filter(agent=agent, revoked_at__isnull=True).update(revoked_at=timezone.now())
    ApiKey.objects.filter(user=user, name=AGENT, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _, key = api_key_create(agent=agent, scopes=["ingest", "gate"], name=AGENT)
    _, person_key = api_key_create(user=user, scopes=["api"], name=AGENT)
    client = Client()
    client.force_login(user)
    return agent, key, person_key, client.cookies["sessionid"].value


@dataclass
class Bodies:
    warmup: list[tuple[int, bytes]]
    timed: list[tuple[int, bytes]]


def marker_run(tracer, i: int) -> None:
    """A two-span run that calls MARKER_TOOL: its request's detection raises one alert of its own."""
    root = tracer.start_span("invoke_agent support-agent", attributes={"gen_ai.operation.name": "invoke_agent"})
    with otel_trace.use_span(root, end_on_exit=True):
        tool = tracer.start_span(
            f"execute_tool {MARKER_TOOL}",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": MARKER_TOOL,
                "gen_ai.tool.call.arguments": json.dumps({"request": i}),
            },
        )
        tool.end()


def make_bodies(n_spans: int, batch: int, warmup: int) -> Bodies:
    """Whole runs per request (a run cut across two requests would be detected with each), about ``batch`` spans,
    and one marker run (``marker_run``) in each."""
    spans = record_spans(n_spans + warmup * batch, seed=17)
    runs: dict[int, list] = collections.defaultdict(list)
    for span in spans:
        runs[span.context.trace_id].append(span)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.scaleout")
    bodies: list[tuple[int, bytes]] = []
    current: list = []

    def close() -> None:
        marker_run(tracer, len(bodies))
        current.extend(exporter.get_finished_spans())
        exporter.clear()
        bodies.append((len(current), encode_spans(current).SerializeToString()))
        current.clear()

    for run in runs.values():
        current += run
        if len(current) >= batch:
            close()
    if current:
        close()
    provider.shutdown()
    return Bodies(warmup=bodies[:warmup], timed=bodies[warmup:])


# --- the processes ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def celery_workers(n: int, logs: Path) -> Iterator[list[subprocess.Popen]]:
    """``n`` Celery workers as ``make run`` runs one (prefork, concurrency 2), each its own node name and log."""
    from firebreak.celery import app  # after django_setup()

    app.control.purge()  # tasks an interrupted run left queued
    celery = Path(sys.executable).parent / "celery"
    procs = []
    try:
        for i in range(1, n + 1):
            command = [str(celery), "-A", "firebreak", "worker", "--loglevel", "INFO", "--concurrency", "2"]
            command += ["--without-gossip", "--without-mingle", "-n", f"scaleout{i}@%h"]
            log = open(logs / f"worker{i}.log", "wb")  # noqa: SIM115 (closed with the process below)
            procs.append(subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=log))
        deadline = time.monotonic() + 90
        while len(app.control.ping(timeout=0.5) or []) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the Celery workers did not start: see {logs}")
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def uvicorn_pids(after: CpuSnapshot) -> set[int]:
    """The gate servers this benchmark started (harness.gate_front: children of this process)."""
    me = os.getpid()
    return {pid for pid, (comm, ppid, _) in after.procs.items() if ppid == me and comm.startswith("uvicorn")}


def queue_depth() -> int:
    """Detection tasks waiting or taken and not yet acknowledged (late acks) on the broker."""
    from firebreak.celery import app  # after django_setup()

    with app.connection_for_read() as conn:
        client = conn.default_channel.client  # type: ignore[attr-defined]  # kombu's Redis channel
        return int(client.llen("celery")) + int(client.hlen("unacked"))


def detection_drained(timeout: float = 180) -> float:
    """Wait until the broker holds no detection task; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while queue_depth():
        if time.monotonic() > deadline:
            raise RuntimeError(f"detection did not drain in {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic()


# --- the figures ------------------------------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    spans: int
    stored: int
    seconds: float
    drained_after: float  # seconds from the last span stored to an empty queue
    cpu: str
    errors: list[str]

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


def ingest_phase(label: str, agent, key: str, targets: list[str], bodies: Bodies, tmp: Path, groups_of) -> Phase:
    """Post the timed bodies split evenly over ``targets`` (one sender each), all at once, after each sender's
    own warm-up bodies (WARMUP_BODIES each, never posted twice: a batch posted again would be detected again)."""
    share = [bodies.timed[i :: len(targets)] for i in range(len(targets))]
    senders = []
    try:
        for i, (url, mine) in enumerate(zip(targets, share, strict=True)):
            path, warm = tmp / f"{label}-{i}.bin", tmp / f"{label}-{i}-warm.bin"
            write_bodies(path, mine)
            write_bodies(warm, bodies.warmup[i * WARMUP_BODIES : (i + 1) * WARMUP_BODIES])
            command = sender_command(f"{url}/v1/traces", path, warm, CONNECTIONS)
            senders.append(Sender(command, {**os.environ, KEY_ENV: key}))
        for sender in senders:
            sender.expect("ready", timeout=120)
            warmed = sender.expect("warmed", timeout=300)
            if warmed["failed"]:
                raise RuntimeError(f"warm-up requests failed: {warmed['errors']}")
        detection_drained()
        baseline = stored_steps(agent)
        wait_quiet(limit=30)
        before = cpu_snapshot()
        for sender in senders:
            sender.go()
        done = [sender.expect("done", timeout=600) for sender in senders]
        spans = sum(n for n, _ in bodies.timed)
        stored, end = wait_stored(lambda: stored_steps(agent), baseline + spans, 30, 0.05)
        drained = detection_drained()
        after = cpu_snapshot()  # the whole work of the phase: its ingest and its detection
        groups = groups_of(after) | {"postgres": postgres_pids()}
        groups["sender"] = set().union(*(descendants(after.procs, s.proc.pid) for s in senders))
    finally:
        for sender in senders:
            sender.close()
    t0 = min(d["t0"] for d in done)
    seconds = end - t0
    return Phase(
        label=label,
        spans=spans,
        stored=stored - baseline,
        seconds=seconds,
        drained_after=drained - end,
        cpu=cpu_line(before, after, drained - t0, groups, spans),
        errors=[e for d in done for e in d["errors"]],
    )


def read_latency(url: str, session: str, n: int) -> list[float]:
    """Milliseconds of ``n`` GETs of the trace list, as a logged-in person (one session for every web stack)."""
    samples = []
    with httpx.Client(base_url=url, cookies={"sessionid": session}, timeout=30) as client:
        for _ in range(n + 2):
            start = time.perf_counter()
            response = client.get("/traces/")
            samples.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:  # a session this web stack did not know would be a 302 to the login
                raise RuntimeError(f"GET {url}/traces/ answered {response.status_code}, not the trace list")
    return samples[2:]  # the first two warm the connection and the worker


def reads_while(url: str, session: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, cookies={"sessionid": session}, timeout=30) as client:
        while not stop.is_set():
            start = time.perf_counter()
            if client.get("/traces/").status_code == 200:
                out.append((time.perf_counter() - start) * 1000)
            stop.wait(0.2)


def kill_rounds(front1: str, front2: str, key: str, person_key: str, rounds: int) -> list[float]:
    """Kill through web 1, heard by the SDK on web 2's stream; resume through web 1 (heard too). Milliseconds."""
    from agents.signing import public_key_text  # after django_setup()

    env = {**os.environ, KEY_ENV: key, "FIREBREAK_GATE_PUBLIC_KEY": public_key_text()}
    agent = ChildProcess("the agent (SDK)", [sys.executable, str(Path(__file__).resolve()), "--listen", front2], env)
    heard = []
    try:
        agent.expect("ready", timeout=60)
        with httpx.Client(base_url=front1, headers={"Authorization": f"Bearer {person_key}"}, timeout=30) as api:
            for i in range(rounds):
                sent = time.monotonic()
                response = api.post(f"/api/v1/agents/{AGENT}/kill", json={"reason": f"bench/scaleout.py round {i}"})
                response.raise_for_status()
                heard.append((float(agent.expect("killed", timeout=10).split()[1]) - sent) * 1000)
                api.post(f"/api/v1/agents/{AGENT}/resume", json={"reason": "bench round over"}).raise_for_status()
                agent.expect("open", timeout=10)
    finally:
        agent.close(timeout=10)
    return heard


def detection_once(logs: Path, agent, posted: int) -> tuple[bool, str]:
    """Each batch's detection task succeeded once across the workers; one marker alert per batch, counted once."""
    from incidents.models import Alert  # after django_setup()

    runs: collections.Counter[str] = collections.Counter()
    per_worker = []
    for log in sorted(logs.glob("worker*.log")):
        ids = SUCCEEDED.findall(log.read_text(errors="replace"))
        per_worker.append(len(ids))
        runs.update(ids)
    twice = sum(1 for n in runs.values() if n > 1)
    alerts = list(Alert.objects.filter(agent=agent, detector="tool_not_allowed").values_list("count", flat=True))
    bumped = sum(1 for n in alerts if n > 1)
    ok = twice == 0 and len(runs) == posted and bumped == 0 and len(alerts) == posted
    line = (
        f"detection: {len(runs):,} batches detected for {posted:,} batches posted "
        f"({' + '.join(f'{n:,}' for n in per_worker)} by the two workers), {twice} detected twice; "
        f"{len(alerts):,} tool_not_allowed alerts for the {posted:,} marker runs (one a batch), "
        f"{bumped} counted more than once"
    )
    return ok, line


def ms(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    return f"p50 {statistics.median(samples):.0f} ms, p95 {percentile(samples, 95):.0f} ms (n={len(samples)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=30_000, help="spans per ingest phase (timed)")
    parser.add_argument("--batch", type=int, default=500, help="about this many spans per OTLP request (whole runs)")
    parser.add_argument("--kills", type=int, default=5, help="kills through web 1 heard on web 2's stream")
    parser.add_argument("--reads", type=int, default=20, help="trace list reads through each web stack, idle")
    parser.add_argument("--listen", help=argparse.SUPPRESS)  # the agent process
    args = parser.parse_args()
    if args.listen:
        listen_main(args.listen)
        return
    started = time.monotonic()
    django_setup()
    agent, key, person_key, session = prepare()
    bodies = make_bodies(2 * args.spans, args.batch, 3 * WARMUP_BODIES)
    say(
        f"payloads: {sum(n for n, _ in bodies.timed):,} spans in {len(bodies.timed):,} OTLP requests "
        f"(whole runs, about {args.batch} spans each, and a run calling {MARKER_TOOL} in each) "
        f"+ {len(bodies.warmup)} warm-up requests"
    )
    half = len(bodies.timed) // 2
    one_web = Bodies(bodies.warmup[:WARMUP_BODIES], bodies.timed[:half])
    two_webs = Bodies(bodies.warmup[WARMUP_BODIES:], bodies.timed[half:])
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fb-scaleout-") as tmp_name:
        tmp = Path(tmp_name)
        with (
            celery_workers(2, tmp) as workers,
            gunicorn(3, 4, timeout=60) as (base1, master1),
            gunicorn(3, 4, timeout=60) as (base2, master2),
            gate_front(base1) as front1,
            gate_front(base2) as front2,
        ):
            say(f"web 1: {front1} → gunicorn {base1}; web 2: {front2} → gunicorn {base2}; 2 Celery workers")

            def groups_of(after: CpuSnapshot) -> dict[str, set[int]]:
                fronts = uvicorn_pids(after)
                return {
                    "web (gunicorn + gate servers)": descendants(after.procs, master1)
                    | descendants(after.procs, master2)
                    | fronts,
                    "workers": set().union(*(descendants(after.procs, w.pid) for w in workers)),
                }

            phases = [ingest_phase("one-web", agent, key, [front1], one_web, tmp, groups_of)]
            stop, under_load = threading.Event(), list[float]()
            reader = threading.Thread(target=reads_while, args=(front2, session, stop, under_load), daemon=True)
            reader.start()
            try:
                phases.append(ingest_phase("two-webs", agent, key, [front1, front2], two_webs, tmp, groups_of))
            finally:
                stop.set()
                reader.join()
            for phase, name in zip(phases, ("1 web stack ", "2 web stacks"), strict=True):
                say(
                    f"ingest  {name}: {phase.rate:>8,.0f} spans/s end to end ({phase.stored:,} of {phase.spans:,} "
                    f"stored in {phase.seconds:.2f} s); detection drained {phase.drained_after:.1f} s after",
                    f"        until detection drained: {phase.cpu}",
                    *(f"        error: {e}" for e in phase.errors[:3]),
                )
            ratio = phases[1].rate / phases[0].rate if phases[0].rate else 0.0
            lines.append(f"  ingest: 1 web {phases[0].rate:,.0f} spans/s, 2 webs {phases[1].rate:,.0f} ({ratio:.2f}×)")
            idle1, idle2 = read_latency(front1, session, args.reads), read_latency(front2, session, args.reads)
            say(
                f"trace list GET /traces/ through web 1, idle: {ms(idle1)}",
                f"trace list GET /traces/ through web 2, idle: {ms(idle2)} (the session made once, good on both)",
                f"trace list GET /traces/ through web 2 while both take ingest: {ms(under_load)}",
            )
            lines.append(f"  trace list: idle {ms(idle1 + idle2)}; under ingest {ms(under_load)}")
            heard = kill_rounds(front1, front2, key, person_key, args.kills)
            say(
                "kill through web 1 → AgentKilled in the SDK on web 2's stream: "
                + ", ".join(f"{h:.1f}" for h in heard)
                + f" ms (median {statistics.median(heard):.1f} ms, {len(heard)} of {args.kills} heard)"
            )
            lines.append(
                f"  kill via web 1 heard on web 2: median {statistics.median(heard):.1f} ms, max {max(heard):.1f}"
            )
            posted = len(bodies.timed) + len(bodies.warmup)
            detection_drained()
            time.sleep(1)  # the last "succeeded" lines reach the logs
        ok, line = detection_once(tmp, agent, posted)
        say(line)
        lines.append(f"  detection once per batch: {'yes' if ok else 'NO'}")
    delete_bench_traces(agent)
    summary(lines, started)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
