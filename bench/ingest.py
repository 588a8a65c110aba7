"""The ingest benchmark: OTLP spans/s into Firebreak and into Arize Phoenix, the trace viewer, the trace list at 1M.

Usage: .venv/bin/python bench/ingest.py [--only throughput|phoenix|viewer|list ...] [--spans N] [--workers 2[,3,4]]
       [--rounds N] [--phoenix-spans N] [--viewer-steps N] [--list-traces N] [--rebuild-list-db] ... (--help)

Parts (all by default; ``--only`` is repeatable):

throughput  GenAI-convention agent runs (root ``invoke_agent``, ``chat`` and ``execute_tool`` spans, 10-20 per trace)
            are recorded with the real OpenTelemetry SDK (TracerProvider + in-memory exporter) and encoded with the
            SDK's OTLP encoder in 512-span requests before anything is timed. A sender process (bench/sender.py)
            posts them over several keep-alive connections to gunicorn (gthread, ``--workers`` x
            ``--threads``) started here on the project's database and Redis (the embedded ones under var/ when
            DATABASE_URL / REDIS_URL are unset). Spans/s is end to end: from the first request sent (after 8
            untimed warm-up requests) until the last span is counted in PostgreSQL. The spans belong to the agent
            ``bench-ingest`` (key "bench-ingest", the previous run's revoked); its traces are deleted (then VACUUM
            ANALYZE) before each round and at the end: the project database, no scratch one. ``--workers 2,3,4
            --rounds 3`` interleaves rounds and reports the median per worker count. Each round prints the CPU
            seconds of gunicorn, PostgreSQL (this database's backends and the server's own processes), the
            sender and everything else on the machine, read from /proc: the machine is shared, check "other".
phoenix     The first ``--phoenix-spans`` of the same spans, the same protobuf bodies, into Arize Phoenix (its own
            virtualenv bench/.phoenix-venv, installed when missing) in a loopback-only network namespace, its
            sender in the namespace too; counted in Phoenix's SQLite database until all are there.
viewer      Server time of ``GET /traces/<id>/`` for a ``--viewer-steps``-step trace, Django test client in-process.
list        ``GET /traces/`` and filters over ``--list-traces`` traces in the scratch database firebreak_bench_list
            on the same PostgreSQL server (built set-based once, reused while it holds that many traces), in a
            child process pointed at it with DATABASE_URL.

Each part lives in its own module (throughput.py, phoenix.py, viewer.py, trace_list.py; the payloads in
payloads.py, the sender in sender.py); this script runs the parts asked for and prints the summary.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import harness
from payloads import build_payloads
from phoenix import NETNS, phoenix_run, phoenix_version
from throughput import AGENT, THROUGHPUT_TARGET, IngestRun, bench_agent, delete_bench_traces, print_run, throughput_run
from trace_list import LIST_DB, list_part
from viewer import VIEWER_TARGET_MS, viewer_part

PARTS = ("throughput", "phoenix", "viewer", "list")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    parser.add_argument("--spans", type=int, default=200_000, help="spans posted to Firebreak (timed)")
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request")
    parser.add_argument("--warmup-batches", type=int, default=8, help="untimed requests before the timed phase")
    parser.add_argument("--workers", default="2", help="gunicorn workers; a list (2,3,4) runs one round each")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--rounds", type=int, default=1, help="throughput rounds per worker count (median)")
    parser.add_argument("--connections", type=int, default=0, help="sender connections (default workers×threads, 4-8)")
    parser.add_argument("--phoenix-spans", type=int, default=10_000, help="spans posted to Phoenix (timed)")
    parser.add_argument("--phoenix-connections", type=int, default=4, help="sender connections to Phoenix")
    parser.add_argument("--viewer-steps", type=int, default=10_000, help="steps of the trace the viewer opens")
    parser.add_argument("--viewer-requests", type=int, default=20, help="timed requests of the viewer")
    parser.add_argument("--list-traces", type=int, default=1_000_000, help="traces in the scratch list database")
    parser.add_argument("--list-requests", type=int, default=20, help="timed requests per list filter")
    parser.add_argument("--rebuild-list-db", action="store_true", help=f"drop and rebuild {LIST_DB}")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated content")
    args = parser.parse_args()
    parts = set(args.only or PARTS)
    workers = [int(w) for w in args.workers.split(",")]
    counts = (args.spans, args.batch, args.rounds, args.warmup_batches, args.phoenix_spans, args.viewer_steps)
    if min(*counts, args.list_traces, *workers) < 1:
        parser.error("every count must be at least 1")
    if min(args.viewer_requests, args.list_requests) < 2:
        parser.error("at least 2 timed requests")
    started = time.monotonic()
    harness.say(f"ingest benchmark: parts {', '.join(p for p in PARTS if p in parts)}")
    summary: list[str] = []
    agent = None
    best: IngestRun | None = None
    phx: IngestRun | None = None
    if parts & {"throughput", "viewer", "list"}:
        harness.django_setup()
    tmp = Path(tempfile.mkdtemp(prefix="fb-ingest-"))
    try:
        if parts & {"throughput", "viewer"}:
            agent, key = bench_agent()
            leftover = delete_bench_traces(agent)
            if leftover:
                harness.say(f"deleted {leftover:,} steps of {AGENT}'s traces left by an interrupted run")
        if parts & {"throughput", "phoenix"}:
            payloads = build_payloads(args, tmp, parts)
        if "throughput" in parts:
            runs: dict[int, list[IngestRun]] = {w: [] for w in workers}
            for _ in range(args.rounds):  # rounds interleave the worker counts: drifts hit them alike
                for w in workers:
                    run = throughput_run(args, payloads, agent, key, w)
                    print_run("firebreak", run, THROUGHPUT_TARGET)
                    runs[w].append(run)
            medians = {w: statistics.median(r.rate for r in rs) for w, rs in runs.items()}
            best_workers = max(medians, key=lambda w: medians[w])
            best = min(runs[best_workers], key=lambda r: abs(r.rate - medians[best_workers]))  # the median run
            if len(workers) > 1 or args.rounds > 1:
                for w, rs in runs.items():
                    rates = ", ".join(f"{r.rate:,.0f}" for r in rs)
                    harness.say(f"        {w} workers: median {medians[w]:,.0f} spans/s ({rates})")
                harness.say(f"        best: {best_workers} workers (median of {args.rounds} round(s))")
            nothing_dropped = all(r.dropped == 0 for rs in runs.values() for r in rs)
            summary.append(
                f"  Firebreak ingest ≥ {THROUGHPUT_TARGET:,} spans/s end to end with nothing dropped: "
                f"{'met' if medians[best_workers] >= THROUGHPUT_TARGET and nothing_dropped else 'NOT met'} "
                f"({medians[best_workers]:,.0f} spans/s, {best.label}; {best.stored:,}/{best.spans:,} stored"
                f"{'' if nothing_dropped else '; SOME RUN DROPPED SPANS'})"
            )
        if "phoenix" in parts:
            harness.say(f"phoenix: arize-phoenix {phoenix_version()} in network namespace {NETNS} (loopback only), "
                f"{payloads.phoenix_spans:,} spans (--phoenix-spans), the same protobuf bodies")  # fmt: skip
            phx = phoenix_run(args, payloads)
            print_run("phoenix", phx)
            line = f"  Phoenix: {phx.rate:,.0f} spans/s over {phx.spans:,} spans ({phx.stored:,} stored)"
            if best is not None and phx.rate:
                ratio = best.rate / phx.rate
                harness.say(
                    f"ratio   Firebreak {best.rate:,.0f} spans/s ({best.spans:,} spans) / Phoenix {phx.rate:,.0f} "
                    f"spans/s ({phx.spans:,} spans) = {ratio:,.0f}×"
                )
                line += f"; Firebreak/Phoenix {ratio:,.0f}×"
            summary.append(line)
        if "viewer" in parts:
            viewer_result = viewer_part(args, agent)
            summary.append(
                f"  viewer first screen ≤ {VIEWER_TARGET_MS:g} ms ({args.viewer_steps:,} steps): "
                f"{'met' if viewer_result['median'] <= VIEWER_TARGET_MS else 'NOT met'} "
                f"(median {viewer_result['median']:.1f} ms, p95 {viewer_result['p95']:.1f} ms)"
            )
        if "list" in parts:
            listing = list_part(args)
            worst = max(listing["rows"].items(), key=lambda kv: kv[1])
            summary.append(
                f"  trace list over {listing['traces']:,} traces: medians "
                f"{min(listing['rows'].values()):.1f}–{worst[1]:.1f} ms (slowest: {worst[0]})"
            )
    finally:
        if agent is not None:
            deleted = delete_bench_traces(agent)
            harness.say(f"cleanup: deleted the {deleted:,} steps of {AGENT}'s traces")
        shutil.rmtree(tmp, ignore_errors=True)
    harness.summary(summary, started)


if __name__ == "__main__":
    main()
