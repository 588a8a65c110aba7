"""Large values: native ingest of spans that each carry one big attribute, stored apart (compressed) or inline.

Usage: .venv/bin/python bench/large_payloads.py [--spans 1000] [--batch 20] [--attr-kib 100] [--big-mib 10]

Each mode posts the same ``--spans`` spans (``--batch`` per request, each span with one ``--attr-kib`` KiB text
attribute cut from a word corpus) to ``POST /api/v1/ingest`` in-process (Django test client, the real parser,
scrubber and COPY writer) on the project's database (the embedded one under var/ when DATABASE_URL is unset):

apart   as shipped: a value over 64 KiB goes to ``traces_steppayload`` zlib-compressed, the step keeps 2,000 chars
inline  the same spans with the bound lifted (APART_BYTES patched to 1 GiB): the value stays in the step row,
        where PostgreSQL TOASTs it (pglz), as before this change

It prints, per mode: spans/s and MB/s of attribute text, the bytes the steps hold (sum of pg_column_size of
the step rows' attributes, as stored), the bytes the payload rows hold, and the time to read the attributes
of every step back (median of 3; what a detector or an export that scans steps pays). Then one span with a
``--big-mib`` MiB output, timed alone, and read back whole through the viewer's value URL. The bench agent's traces are
deleted before and after each mode. One untimed request first.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import harness
from harness import Corpus, say

AGENT = "bench-large-payloads"
MIB = 1024 * 1024


def spans_body(rng: random.Random, words: Corpus, first: int, n: int, attr_bytes: int) -> bytes:
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    spans = []
    for i in range(first, first + n):
        text = ""
        while len(text) < attr_bytes:
            text += words(2000, 4000) + " "
        spans.append({
            "trace_id": f"{i // 10 + 1:032x}", "span_id": f"{i + 1:016x}", "name": "retrieve",
            "kind": "retrieval", "start_time": (t0 + timedelta(seconds=i)).isoformat(),
            "attributes": {"retrieval.document": text[:attr_bytes]},
        })  # fmt: skip
    return json.dumps({"spans": spans}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--attr-kib", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if min(args.spans, args.batch, args.attr_kib, args.big_mib) < 1:
        parser.error("every count must be at least 1")
    started = time.monotonic()
    harness.django_setup()
    # After django_setup(): the project's modules need Django configured.
    from django.db import connection
    from django.test import Client

    from agents.keys.services import api_key_create
    from agents.models import Agent
    from traces.ingest import payloads
    from traces.models import Trace

    agent, _ = Agent.objects.get_or_create(slug=AGENT, defaults={"name": AGENT})
    _, key = api_key_create(agent=agent, scopes=["ingest"])
    client = Client()
    auth = {"Authorization": f"Bearer {key}"}
    rng = random.Random(args.seed)
    words = Corpus(rng)
    bodies = [
        spans_body(rng, words, i, min(args.batch, args.spans - i), args.attr_kib * 1024)
        for i in range(0, args.spans, args.batch)
    ]
    attr_mb = args.spans * args.attr_kib * 1024 / 1e6
    say(f"large payloads: {args.spans:,} spans × {args.attr_kib} KiB attribute, {args.batch} per request; "
        f"{harness.machine()}")  # fmt: skip

    def clean() -> None:
        Trace.objects.filter(agent=agent).delete()

    def sizes() -> tuple[int, int]:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT coalesce(sum(pg_column_size(s.attributes)), 0) FROM traces_step s "
                "JOIN traces_trace t ON t.id = s.trace_id WHERE t.agent_id = %s",
                [agent.pk],
            )
            steps = cur.fetchone()[0]
            cur.execute(
                "SELECT coalesce(sum(pg_column_size(p.data)), 0) FROM traces_steppayload p "
                "JOIN traces_trace t ON t.id = p.trace_id WHERE t.agent_id = %s",
                [agent.pk],
            )
            return steps, cur.fetchone()[0]

    def read_back() -> float:
        samples = []
        for _ in range(3):
            with connection.cursor() as cur:
                t = time.perf_counter()
                cur.execute(
                    "SELECT s.attributes FROM traces_step s JOIN traces_trace t ON t.id = s.trace_id "
                    "WHERE t.agent_id = %s",
                    [agent.pk],
                )
                cur.fetchall()
                samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    summary = []
    bound = payloads.APART_BYTES
    # Untimed: the first requests pay for imports, connections and caches.
    response = client.post("/api/v1/ingest", data=bodies[0], content_type="application/json", headers=auth)
    assert response.status_code == 200, response.content[:300]
    for mode in ("apart", "inline"):
        clean()
        payloads.APART_BYTES = bound if mode == "apart" else 1024 * MIB
        t = time.perf_counter()
        for body in bodies:
            response = client.post("/api/v1/ingest", data=body, content_type="application/json", headers=auth)
            assert response.status_code == 200, response.content[:300]
        took = time.perf_counter() - t
        step_bytes, payload_bytes = sizes()
        read = read_back()
        line = (
            f"  {mode:6} {args.spans / took:8,.0f} spans/s  {attr_mb / took:6.1f} MB/s of attribute text  "
            f"steps hold {step_bytes / 1e6:8.2f} MB  payload rows {payload_bytes / 1e6:6.1f} MB  "
            f"reading every step's attributes {read * 1000:7.1f} ms"
        )
        say(line)
        summary.append(line)
    payloads.APART_BYTES = bound
    clean()

    big = (words.text * (args.big_mib * MIB // len(words.text) + 1))[: args.big_mib * MIB]
    span = {"trace_id": "f" * 32, "span_id": "f" * 16, "name": "read_file", "kind": "tool",
            "start_time": "2026-11-20T10:00:00+00:00", "output": big}  # fmt: skip
    body = json.dumps({"spans": [span]}).encode()
    t = time.perf_counter()
    response = client.post("/api/v1/ingest", data=body, content_type="application/json", headers=auth)
    took = time.perf_counter() - t
    assert response.status_code == 200, response.content[:300]
    client.force_login(harness.bench_user())
    t = time.perf_counter()
    back = client.get(f"/traces/{'f' * 32}/steps/{'f' * 16}/value/?agent={AGENT}&field=output&download=1")
    fetch = time.perf_counter() - t
    assert back.content.decode() == big
    _, payload_bytes = sizes()
    line = (
        f"  one span with a {args.big_mib} MiB output: ingest {took * 1000:.0f} ms "
        f"({len(body) / 1e6 / took:.1f} MB/s), stored in {payload_bytes / 1e6:.1f} MB, "
        f"served back whole in {fetch * 1000:.0f} ms"
    )
    say(line)
    summary.append(line)
    clean()
    harness.summary(summary, started)


if __name__ == "__main__":
    main()
