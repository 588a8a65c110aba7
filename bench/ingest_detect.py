"""Ingest with detection on: CPU per span of gunicorn, PostgreSQL and the Celery worker, and detection lag.

Usage: .venv/bin/python bench/ingest_detect.py [--rates 2000,5000,10000] [--seconds 20] [--alone-spans 30000]
       [--batch 512] [--workers 2] [--threads 2] [--connections 4]

The GenAI agent runs of bench/ingest.py (bench/payloads.py: recorded with the real OpenTelemetry SDK, encoded
with its OTLP encoder, ``--batch`` spans per request) are posted over keep-alive connections to gunicorn
(gthread) on the project's database and Redis, as the sender of bench/ingest.py does (bench/sender.py).

1. Ingest alone: ``--alone-spans`` spans as fast as they are taken, no worker running (the detection tasks
   queued meanwhile are purged after), spans/s end to end until counted in PostgreSQL, CPU µs per span.
2. Detection on: a Celery worker as ``make run`` starts it (prefork, concurrency 2; bench/detect_worker.py,
   which writes down when each ``detect_batch_task`` finished and for which traces). For each offered rate
   the sender posts ``--seconds`` worth of spans at that rate (request i is due when the spans before it have
   been offered at that rate). A request's spans are detected when the detection batch of that request (the
   task whose traces are exactly the request's traces) has run; lag = that task's end minus the request's due
   time, so a sender falling behind counts as lag too. p50/p99/max over spans, the share detected, and CPU
   µs per span of gunicorn, PostgreSQL (this database's backends and the server's own processes) and the
   worker, from /proc, from the first request until the last batch ran (or 30 s after the last answer).

The spans belong to the agent ``bench-ingest``; its traces (and the alerts detection raised on them) are
deleted before each part and at the end. The machine is shared: each part also prints "other" CPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import cpu_line, cpu_snapshot, descendants, gunicorn, postgres_pids, say, wait_quiet, wait_stored
from payloads import encode_bodies, record_spans
from sender import KEY_ENV, Sender, sender_command, write_bodies
from throughput import bench_agent, stored_steps

LAG_TARGET = 2.0  # seconds, p99
DRAIN_SECONDS = 30  # how long detection may lag behind the last answer before a phase ends anyway


def _trace_ids(body: bytes) -> frozenset[str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return frozenset(s.trace_id.hex() for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)


def _delete(agent) -> None:
    from django.db import close_old_connections, connection  # after django_setup()

    close_old_connections()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM incidents_alert WHERE agent_id = %s", [agent.pk])
    from throughput import delete_bench_traces

    delete_bench_traces(agent, vacuum=True)


def _trace_keys(agent) -> dict[int, str]:
    from traces.models import Trace  # after django_setup()

    return dict(Trace.objects.filter(agent=agent).values_list("pk", "trace_id"))


def _read_batches(path: Path) -> list[tuple[float, frozenset[int]]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        t, *pks = line.split()
        out.append((float(t), frozenset(int(pk) for pk in pks)))
    return out


def _pctl(samples: list[float], p: float) -> float:
    return harness.percentile(samples, p) if samples else float("nan")


def alone(args, bodies: list[tuple[int, bytes]], warm: Path, tmp: Path, agent, key: str) -> str:
    from firebreak.celery import app  # after django_setup()

    path = tmp / "alone.bin"
    write_bodies(path, bodies)
    total = sum(n for n, _ in bodies)
    _delete(agent)
    with gunicorn(args.workers, args.threads, timeout=120) as (base, master):
        sender = Sender(sender_command(f"{base}/v1/traces", path, warm, args.connections), {**os.environ, KEY_ENV: key})
        try:
            sender.expect("ready", timeout=120)
            sender.expect("warmed", timeout=300)
            baseline = stored_steps(agent)
            wait_quiet()
            before = cpu_snapshot()
            sender.go()
            done = sender.expect("done", timeout=3600)
            stored, end = wait_stored(lambda: stored_steps(agent), baseline + total, 30, 0.05)
            after = cpu_snapshot()
            groups = {"gunicorn": descendants(after.procs, master), "postgres": postgres_pids()}
        finally:
            sender.close()
    purged = app.control.purge()  # the detection tasks no worker took: not the next part's work
    seconds = end - done["t0"]
    rate = (stored - baseline) / seconds
    say(
        f"alone   {rate:,.0f} spans/s end to end, no worker ({stored - baseline:,}/{total:,} stored in "
        f"{seconds:.2f} s; "
        f"{purged} queued detection tasks purged after)",
        f"        {cpu_line(before, after, seconds, groups, total)}",
    )
    return f"  ingest alone: {rate:,.0f} spans/s ({cpu_line(before, after, seconds, groups, total).split('; ')[-1]})"


def with_detection(args, phases, warm: Path, tmp: Path, agent, key: str) -> list[str]:
    lines = []
    batches_log = tmp / "batches.log"
    worker_cmd = [sys.executable, str(Path(__file__).resolve().parent / "detect_worker.py"), str(batches_log)]
    _delete(agent)
    with gunicorn(args.workers, args.threads, timeout=120) as (base, master):
        worker = subprocess.Popen(worker_cmd, cwd=harness.ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL)
        try:
            from firebreak.celery import app  # after django_setup()

            deadline = time.monotonic() + 60
            while not (app.control.ping(timeout=0.5) or []):
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the detection worker did not start")
            for rate, bodies in phases:
                lines.append(_phase(args, rate, bodies, warm, tmp, agent, key, base, master, worker, batches_log))
                _delete(agent)
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    return lines


def _phase(args, rate, bodies, warm, tmp, agent, key, base, master, worker, batches_log) -> str:
    path = tmp / f"rate-{rate}.bin"
    write_bodies(path, bodies)
    total = sum(n for n, _ in bodies)
    wanted = [_trace_ids(b) for _, b in bodies]
    env = {**os.environ, KEY_ENV: key}
    sender = Sender(sender_command(f"{base}/v1/traces", path, warm, args.connections, rate=rate), env)
    try:
        sender.expect("ready", timeout=120)
        sender.expect("warmed", timeout=300)
        time.sleep(3)  # the warm-up's detection batches run before the clock starts
        batches_log.unlink(missing_ok=True)
        baseline = stored_steps(agent)
        wait_quiet()
        before = cpu_snapshot()
        sender.go()
        done = sender.expect("done", timeout=3600)
        # Until every request's detection batch ran, or DRAIN_SECONDS after the last answer.
        deadline = time.time() + DRAIN_SECONDS
        while time.time() < deadline and len(_read_batches(batches_log)) < len(bodies):
            time.sleep(0.1)
        end = time.time()
        after = cpu_snapshot()
        groups = {
            "gunicorn": descendants(after.procs, master),
            "postgres": postgres_pids(),
            "worker": descendants(after.procs, worker.pid),
        }
    finally:
        sender.close()
    stored = stored_steps(agent) - baseline
    keys = _trace_keys(agent)
    ran: dict[frozenset[str], float] = {}
    for t, pks in _read_batches(batches_log):
        ids = frozenset(keys.get(pk, "") for pk in pks)
        ran.setdefault(ids, t)
    lags: list[float] = []
    detected = 0
    for (n, _), ids, (due, _sent, _answered) in zip(bodies, wanted, done["requests"], strict=True):
        ran_at = ran.get(ids)
        if ran_at is not None:
            lags.extend([ran_at - due] * n)
            detected += n
    first_due = done["requests"][0][0]
    last_answer = max(r[2] for r in done["requests"])
    achieved = total / (last_answer - first_due)
    seconds = end - first_due
    cpu = cpu_line(before, after, seconds, groups, total)
    p50, p99, worst = _pctl(lags, 50), _pctl(lags, 99), max(lags, default=float("nan"))
    met = "met" if detected == total and p99 <= LAG_TARGET and achieved >= 0.95 * rate else "NOT met"
    say(
        f"detect  offered {rate:,} spans/s for {total / rate:.0f} s: answered at {achieved:,.0f} spans/s; "
        f"{stored:,}/{total:,} stored; detected {detected:,} ({detected / total:.1%})",
        f"        detection lag p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s "
        f"(target p99 ≤ {LAG_TARGET:g} s: {met})",
        f"        {cpu}",
    )
    return (
        f"  {rate:,} spans/s offered: answered {achieved:,.0f}/s, lag p50 {p50:.2f} s p99 {p99:.2f} s "
        f"({detected / total:.0%} detected): {met}; {cpu.split('; ')[-1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="2000,5000,10000", help="offered spans/s, one phase each")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of spans per phase")
    parser.add_argument("--alone-spans", type=int, default=30_000, help="spans of the ingest-alone part (0: skip)")
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--connections", type=int, default=4, help="sender connections")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]
    started = time.monotonic()
    harness.django_setup()
    agent, key = bench_agent()
    warm_n = 4 * args.batch
    sizes = [args.alone_spans] + [int(r * args.seconds) for r in rates]
    say(f"ingest with detection: {warm_n + sum(sizes):,} GenAI spans; {args.batch} per OTLP request; "
        f"gunicorn gthread {args.workers}×{args.threads}, {args.connections} connections")  # fmt: skip
    summary = []
    with tempfile.TemporaryDirectory(prefix="fb-detect-") as tmpdir:
        tmp = Path(tmpdir)
        warm = tmp / "warm.bin"
        write_bodies(warm, encode_bodies(record_spans(warm_n, args.seed), args.batch))
        # Each part's spans recorded apart (another seed: other traces), encoded, and the SDK's spans let go.
        chunks = [
            encode_bodies(record_spans(size, args.seed + 1 + i), args.batch) if size else []
            for i, size in enumerate(sizes)
        ]
        try:
            if args.alone_spans:
                summary.append(alone(args, chunks[0], warm, tmp, agent, key))
            summary += with_detection(args, list(zip(rates, chunks[1:], strict=True)), warm, tmp, agent, key)
        finally:
            _delete(agent)
    harness.summary(summary, started)


if __name__ == "__main__":
    main()
