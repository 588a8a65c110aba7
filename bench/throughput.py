"""Firebreak's ingest throughput: OTLP spans/s end to end, into gunicorn and PostgreSQL, until stored.

A sender process (bench/sender.py) posts the pre-encoded bodies (bench/payloads.py) over several keep-alive
connections to gunicorn (gthread, ``--workers`` x ``--threads``) started on the project's database and Redis.
Spans/s is end to end: from the first request sent (after the untimed warm-up requests) until the last span
is counted in PostgreSQL. The spans belong to the agent ``bench-ingest`` (key "bench-ingest", the previous
run's revoked); its traces are deleted (then VACUUM ANALYZE) before each round and at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness import cpu_line, cpu_snapshot, descendants, gunicorn, postgres_pids, say, wait_quiet, wait_stored
from payloads import Payloads
from sender import KEY_ENV, Sender, sender_command

AGENT = "bench-ingest"
KEY_NAME = "bench-ingest"
THROUGHPUT_TARGET = 20_000  # spans/s


def bench_agent():
    """The agent ``bench-ingest`` (created once) and a fresh ingest key; earlier bench keys are revoked."""
    from django.utils import timezone  # after django_setup(), as every project import here

    from agents.keys.services import api_key_create
    from agents.models import Agent, ApiKey
    from agents.services import agent_register
    from core.actors import Actor

    agent = Agent.objects.filter(slug=AGENT).first() or agent_register(
        slug=AGENT,
        name="Bench ingest agent",
        actor=Actor.system("bench"),
        description="Used by bench/ingest.py: its traces are deleted after each run.",
        environment="staging",
    )
    ApiKey.objects.filter(agent=agent, name=KEY_NAME, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _, key = api_key_create(agent=agent, scopes=["ingest", "gate"], name=KEY_NAME)
    return agent, key


def delete_bench_traces(agent, *, vacuum: bool = False) -> int:
    """Delete the bench agent's traces (and steps); with ``vacuum``, VACUUM ANALYZE the two tables after."""
    from django.db import close_old_connections, connection  # after django_setup()

    from traces.models import Trace

    close_old_connections()
    _, by_model = Trace.objects.filter(agent=agent).delete()
    if vacuum:
        with connection.cursor() as cur:
            cur.execute("VACUUM (ANALYZE) traces_trace, traces_step")
    return by_model.get("traces.Step", 0)


def stored_steps(agent) -> int:
    from django.db import connection  # after django_setup()

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM traces_step s JOIN traces_trace t ON t.id = s.trace_id WHERE t.agent_id = %s",
            [agent.pk],
        )
        return cur.fetchone()[0]


@dataclass
class IngestRun:
    label: str
    spans: int  # sent in the timed phase
    acked: int
    stored: int
    seconds: float  # first request sent -> all stored and counted
    acked_seconds: float  # first request sent -> last response
    retries: int
    errors: list[str]
    cpu: str

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    @property
    def dropped(self) -> int:
        return self.spans - self.stored


def throughput_run(args, payloads: Payloads, agent, key: str, workers: int) -> IngestRun:
    connections = args.connections or min(8, max(4, workers * args.threads))
    label = f"gunicorn gthread {workers}×{args.threads}, {connections} connections"
    delete_bench_traces(agent, vacuum=True)  # every round starts from the same tables, autovacuum idle
    with gunicorn(workers, args.threads, timeout=120) as (base, master):
        env = {**os.environ, KEY_ENV: key}
        sender = Sender(sender_command(f"{base}/v1/traces", payloads.firebreak, payloads.warmup, connections), env)
        try:
            sender.expect("ready", timeout=120)
            warm = sender.expect("warmed", timeout=300)
            if warm["failed"]:
                raise RuntimeError(f"warm-up requests failed: {warm['errors']}")
            baseline = stored_steps(agent)
            wait_quiet()
            before = cpu_snapshot()
            sender.go()
            done = sender.expect("done", timeout=3600)
            stored, end = wait_stored(lambda: stored_steps(agent), baseline + payloads.firebreak_spans, 30, 0.05)
            after = cpu_snapshot()
            groups = {
                "gunicorn": descendants(after.procs, master),
                "postgres": postgres_pids(),
                "sender": descendants(after.procs, sender.proc.pid),
            }
        finally:
            sender.close()
    seconds = end - done["t0"]
    return IngestRun(
        label=label,
        spans=payloads.firebreak_spans,
        acked=done["acked"],
        stored=stored - baseline,
        seconds=seconds,
        acked_seconds=done["t_end"] - done["t0"],
        retries=done["retries"],
        errors=done["errors"],
        cpu=cpu_line(before, after, seconds, groups, payloads.firebreak_spans),
    )


def print_run(system: str, run: IngestRun, target: float | None = None) -> None:
    met = "" if target is None else f"  (target ≥ {target:,.0f}: {'met' if run.rate >= target else 'NOT met'})"
    say(
        f"ingest  {system:<9} {run.label:<44} {run.rate:>9,.0f} spans/s end to end{met}",
        f"        {'':<9} {run.spans:,} spans sent, {run.acked:,} acknowledged, {run.stored:,} stored, "
        f"{run.dropped:,} dropped; {run.seconds:.2f} s first request → all stored "
        f"(last response after {run.acked_seconds:.2f} s); {run.retries} retries",
        f"        {'':<9} {run.cpu}",
    )
    for error in run.errors:
        say(f"        {'':<9} error: {error}")
