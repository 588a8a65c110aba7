"""The trajectory viewer: server time of ``GET /traces/<id>/`` for a ``--viewer-steps``-step trace, in-process
(Django test client), after the trace is ingested through ``trace_ingest``."""

from __future__ import annotations

import json
import random
import statistics
import time

from harness import TOOLS, Corpus, bench_user, percentile, say, time_get, tool_call

VIEWER_TARGET_MS = 150.0


def viewer_steps(rng: random.Random, n: int) -> list[dict]:
    words = Corpus(rng)
    steps = []
    tool_names = list(TOOLS)
    for i in range(n):
        if i % 2 == 0:
            long = rng.random() < 0.02
            steps.append({
                "kind": "llm", "name": "chat gpt-4o-mini", "model": "gpt-4o-mini-2024-07-18",
                "input": words(300, 1500), "output": words(4000, 9000) if long else words(80, 600),
                "tokens_in": rng.randint(600, 4000), "tokens_out": rng.randint(15, 300),
                "cost": round(rng.uniform(0.0001, 0.003), 6), "finish_reason": "tool_calls",
                "duration_ms": rng.randint(300, 3000),
            })  # fmt: skip
        else:
            tool = rng.choice(tool_names)
            args, result = tool_call(rng, words, tool, rng.randint(100_000, 999_999))
            failed = rng.random() < 0.02
            steps.append({
                "kind": "tool", "tool": tool, "args": args, "output": json.dumps(result),
                "status": "error" if failed else "ok", "error": "upstream timed out" if failed else "",
                "duration_ms": rng.randint(15, 900),
            })  # fmt: skip
    return steps


def viewer_part(args, agent) -> dict:
    from django.conf import settings  # after django_setup(), as every project import here
    from django.test import Client

    from traces.services import trace_ingest
    from traces.synthetic import trajectory_spans

    rng = random.Random(args.seed + 1)
    spans = trajectory_spans(
        agent=agent.slug,
        steps=viewer_steps(rng, args.viewer_steps),
        rng=rng,
        root_input="Reconcile every open order of the week and refund the duplicates.",
        root_output="Done: 4,812 orders checked, 37 duplicate charges refunded.",
    )
    chunk = min(2000, settings.FIREBREAK_INGEST_MAX_SPANS)
    started = time.monotonic()
    for i in range(0, len(spans), chunk):
        trace_ingest(spans=spans[i : i + chunk], key_agent=agent)
    ingested = time.monotonic() - started
    client = Client()
    client.force_login(bench_user())
    url = f"/traces/{spans[0].trace_id}/"
    samples, status, body = time_get(client, url, args.viewer_requests)
    result = {
        "median": statistics.median(samples),
        "p95": percentile(samples, 95),
        "max": max(samples),
        "n": len(samples),
    }
    met = "met" if result["median"] <= VIEWER_TARGET_MS else "NOT met"
    say(
        f"viewer  GET /traces/<id>/ of a {args.viewer_steps:,}-step trace ({len(spans):,} spans, ingested in "
        f"{ingested:.1f} s): median {result['median']:.1f} ms, p95 {result['p95']:.1f} ms, max {result['max']:.1f} "
        f"ms over {len(samples)} requests (HTTP {status}, {len(body) / 1024:,.0f} KiB)  "
        f"(target ≤ {VIEWER_TARGET_MS:g} ms: {met})"
    )
    return result
