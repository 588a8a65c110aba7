"""Ingest's CPU per span, in-process, by stage: parse the OTLP protobuf, scrub, hash, split, write.

Usage: .venv/bin/python bench/ingest_cpu.py [--spans 5120] [--batch 512] [--rounds 3] [--profile [N]]

The same GenAI agent runs as bench/ingest.py's throughput part (bench/payloads.py: recorded with the real
OpenTelemetry SDK, encoded with its OTLP encoder, ``--batch`` spans per request) go through the stages
``POST /v1/traces`` runs, one request body at a time, without HTTP: ``parse_protobuf``, ``span_scrub`` and
``action_hash`` (what ``trace_ingest`` does first), ``payloads_split``, then ``trace_ingest`` itself on the
same bodies parsed again ("write": its CPU less the scrub and split measured before). CPU is this process's
(``time.process_time``); "postgres" is the CPU of the PostgreSQL backend serving this process during
``trace_ingest`` (from /proc/<pid>/schedstat; the server's own processes, WAL writer and checkpointer, not in
it). Each stage is reported as µs per span, the median of ``--rounds`` rounds; the spans belong to the agent
``bench-ingest`` and are deleted after every round.
``--profile N`` prints cProfile's top N functions (CPU time) of one round of parse + trace_ingest instead.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import pstats
import statistics
import time
from pathlib import Path

import harness
from payloads import encode_bodies, record_spans
from throughput import bench_agent, delete_bench_traces


def _cpu_ns(pid: int) -> int:
    """CPU time of process ``pid`` so far, in ns (the scheduler's count: finer than /proc/<pid>/stat's ticks)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5120)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, nargs="?", const=25, default=0, help="cProfile's top N instead")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    harness.django_setup()
    from django.conf import settings  # after django_setup(), as every project import here
    from django.db import connection

    from core.redaction import scrubber
    from traces.ingest.normalize import action_hash, span_scrub
    from traces.ingest.parse.otlp import parse_protobuf
    from traces.ingest.payloads import payloads_split
    from traces.services import trace_ingest

    bodies = [body for _, body in encode_bodies(record_spans(args.spans, args.seed), args.batch)]
    limit = settings.FIREBREAK_INGEST_MAX_SPANS
    agent, _ = bench_agent()
    delete_bench_traces(agent)
    harness.say(f"ingest CPU in-process: {args.spans:,} GenAI spans in {len(bodies)} OTLP protobuf bodies")

    def parse_all() -> list:
        return [parse_protobuf(b, max_spans=limit, service_name_is_agent=False) for b in bodies]

    # As trace_ingest does: the scrubber looked up once a batch (span_scrub takes it since this benchmark came;
    # without ``using`` it is the code before, measured for the README's before/after).
    once_a_batch = "using" in inspect.signature(span_scrub).parameters

    def scrub_all(batches: list) -> None:
        for spans in batches:
            options = {"using": scrubber()} if once_a_batch else {}
            for s in spans:
                span_scrub(s, **options)
                if s.tool_name:
                    s.action_hash = action_hash(s.tool_name, s.tool_arguments)

    if args.profile:
        parse_all()  # warm caches
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for spans in parse_all():
            trace_ingest(spans=spans, key_agent=agent)
        prof.disable()
        delete_bench_traces(agent)
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
        return

    def backend_pid() -> int:  # this round's: the connection may have been closed and opened again
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            return cur.fetchone()[0]

    stages: dict[str, list[float]] = {
        "parse": [], "scrub+hash": [], "split": [], "write": [], "total": [], "postgres": []
    }  # fmt: skip
    try:
        for _ in range(args.rounds + 1):  # the first round warms caches and is not counted
            t0 = time.process_time()
            batches = parse_all()
            t1 = time.process_time()
            scrub_all(batches)
            t2 = time.process_time()
            for spans in batches:
                for s in spans:
                    payloads_split(s)
            t3 = time.process_time()
            fresh = parse_all()  # trace_ingest scrubs, hashes and splits itself: unscrubbed spans, as a request's
            backend = backend_pid()
            t4, pg4 = time.process_time(), _cpu_ns(backend)
            for spans in fresh:
                trace_ingest(spans=spans, key_agent=agent)
            t5, pg5 = time.process_time(), _cpu_ns(backend)
            delete_bench_traces(agent)
            service = t5 - t4
            write = service - (t2 - t1) - (t3 - t2)
            for name, secs in (("parse", t1 - t0), ("scrub+hash", t2 - t1), ("split", t3 - t2), ("write", write),
                               ("total", t1 - t0 + service), ("postgres", (pg5 - pg4) / 1e9)):  # fmt: skip
                stages[name].append(secs / args.spans * 1e6)
    finally:
        delete_bench_traces(agent)
    per = {name: statistics.median(v[1:]) for name, v in stages.items()}
    harness.say(
        "CPU µs per span (median of rounds): " + ", ".join(f"{name} {v:,.1f}" for name, v in per.items()),
        f"  write: trace_ingest's CPU less the scrub and split measured apart; one core's ceiling without HTTP "
        f"≈ {1e6 / per['total']:,.0f} spans/s (PostgreSQL's CPU not counted); total + postgres "
        f"{per['total'] + per['postgres']:,.1f}",
    )


if __name__ == "__main__":
    main()
