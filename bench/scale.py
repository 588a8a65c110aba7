"""Reads at scale: the project's own selectors over N steps of realistic traces, in a scratch database.

Usage: .venv/bin/python bench/scale.py [--steps 1000000] [--keep] [--repeat 5]

Builds ``firebreak_bench_scale`` on the project's PostgreSQL (the embedded one unless DATABASE_URL is set),
migrates it, and fills it set-based (``INSERT … SELECT`` over ``generate_series``, no Python per row): 20
agents, ~500,000 users, traces of 5 to 40 steps (model and tool calls alternating) over the last 30 days, JSON tool
arguments (an order id, an amount, an e-mail, a note), outputs of ~150 characters, 2 % of tool calls failing,
one trace of 100,000 steps for the viewer. With ``--keep`` a database that already holds the asked number of
steps is reused (building 10M steps takes a while) and left in place.

The signatures and their selectivity are fixed here, so runs compare:

- hot tool ``lookup_order`` (~40 % of tool calls), rare tool ``delete_account`` (~0.1 %);
- an argument substring matching ~0.01 % of calls (``A-12345``), a regex with a literal (``re:A-1234[0-9]``);
- an action hash taken from one ``delete_account`` call.

Each read is the median of ``--repeat`` runs through the selector the page or the API calls (after one
warm-up), printed one per line with its target; the storage of the steps table closes the list.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import gate_push
import psycopg

from harness import django_setup, duration, say, summary
from trace_list import TRACE_COLUMNS  # the trace table's columns, as the list benchmark fills it

SCRATCH_DB = "firebreak_bench_scale"
AGENTS = 20
USERS = 500_000
DAYS = 30
BIG_TRACE_STEPS = 100_000
CHUNK_TRACES = 50_000  # traces per INSERT of their steps: progress is shown between chunks
TOOLS = (  # tool, share of tool calls in per mille
    ("lookup_order", 400), ("search_kb", 200), ("send_email", 150), ("issue_refund", 100), ("update_ticket", 99),
    ("escalate_to_human", 50), ("delete_account", 1),
)  # fmt: skip
HOT_TOOL, RARE_TOOL = "lookup_order", "delete_account"
ARG_SUBSTRING = "A-12345"  # order ids are A-100000..A-999999 (1 in 900,000 calls each); see the arguments below
ARG_REGEX = "re:A-1234[0-9]"

_TOOL_CASE = (
    "CASE "
    + " ".join(
        f"WHEN mod(hs, 1000) < {sum(p for _, p in TOOLS[: i + 1])} THEN '{name}'" for i, (name, _) in enumerate(TOOLS)
    )
    + " END"
)
STEP_COLUMNS = (
    "trace_id, span_id, parent_span_id, kind, name, agent_name, tool_name, tool_arguments, action_hash, input, "
    "output, model, tokens_in, tokens_out, cost, finish_reason, status, error_message, started_at, ended_at, "
    "attributes"
)
FILL_TRACES = f"""
INSERT INTO traces_trace ({TRACE_COLUMNS})
SELECT md5('fbs-' || g), (%(agents)s::bigint[])[1 + mod(h1, {AGENTS})], 'sess-' || (g / 4),
       'user-' || mod(h2, {USERS}), (ARRAY['order_status', 'refund', 'account', 'shipping', 'other'])[1 + mod(h3, 5)],
       'Where is my order A-' || (100000 + mod(h2, 900000)) || '? It was due on Monday.',
       'Your order left the warehouse yesterday.',
       CASE WHEN g > %(n)s - 50 THEN 'running' WHEN mod(h3, 50) = 0 THEN 'error' ELSE 'ok' END,
       'gpt-4o-2024-08-06', 'v' || (1 + mod(h3, 4)), ts, ts + make_interval(secs => 5 + mod(h2, 40)),
       1000, 200, 0.01, 5 + mod(h1, 36), (5 + mod(h1, 36)) / 2, 0, false, '', '', '', NULL, now()
FROM (
    SELECT g, abs(hashtext('a' || g)::bigint) AS h1, abs(hashtext('b' || g)::bigint) AS h2,
           abs(hashtext('c' || g)::bigint) AS h3,
           now() - make_interval(secs => (%(n)s - g) * %(spacing)s) AS ts
    FROM generate_series(1, %(n)s) AS g
) AS r
"""
FILL_STEPS = f"""
INSERT INTO traces_step ({STEP_COLUMNS})
SELECT t.id, lpad(to_hex(k), 16, '0'), '', CASE WHEN mod(k, 2) = 1 THEN 'llm' ELSE 'tool' END,
       CASE WHEN mod(k, 2) = 1 THEN 'chat' ELSE tool END, '',
       CASE WHEN mod(k, 2) = 1 THEN '' ELSE tool END,
       CASE WHEN mod(k, 2) = 1 THEN NULL ELSE jsonb_build_object(
           'order_id', 'A-' || (100000 + mod(hs / 7, 900000)), 'amount', mod(hs / 11, 50000) / 100.0,
           'email', 'customer' || mod(hs / 13, 500000) || '@example.com',
           'note', 'customer asked twice about delivery; priority ' || mod(hs, 5)) END,
       CASE WHEN mod(k, 2) = 1 THEN '' ELSE left(md5(tool || mod(hs / 7, 900000)), 16) END,
       CASE WHEN mod(k, 2) = 1 THEN 'Customer: where is my order? Assistant, step ' || k ELSE '' END,
       'Order A-' || (100000 + mod(hs / 7, 900000)) || ' is in transit; the carrier expects delivery in '
           || (1 + mod(hs, 5)) || ' business days. Tracking number ' || md5(hs::text) || '.',
       CASE WHEN mod(k, 2) = 1 THEN 'gpt-4o-2024-08-06' ELSE '' END,
       CASE WHEN mod(k, 2) = 1 THEN 800 + mod(hs, 400) ELSE 0 END,
       CASE WHEN mod(k, 2) = 1 THEN 50 + mod(hs, 300) ELSE 0 END, 0.001,
       CASE WHEN mod(k, 2) = 1 THEN (CASE WHEN mod(hs, 40) = 0 THEN 'refusal' ELSE 'stop' END) ELSE '' END,
       CASE WHEN mod(k, 2) = 0 AND mod(hs, 50) = 0 THEN 'error' ELSE 'ok' END,
       CASE WHEN mod(k, 2) = 0 AND mod(hs, 50) = 0 THEN 'upstream returned 503' ELSE '' END,
       t.started_at + make_interval(secs => k), t.started_at + make_interval(secs => k + 1), '{{}}'::jsonb
FROM (SELECT id, started_at, step_count FROM traces_trace WHERE id >= %(lo)s AND id < %(hi)s) AS t
CROSS JOIN LATERAL generate_series(1, t.step_count) AS k
CROSS JOIN LATERAL (SELECT abs(hashtext(t.id || '-' || k)::bigint) AS hs) AS h
CROSS JOIN LATERAL (SELECT {_TOOL_CASE} AS tool) AS c
"""


def build(target_steps: int) -> None:
    """Fill the scratch database with about ``target_steps`` steps; prints progress."""
    from django.db import connection  # after django_setup(), as every project import here

    from agents.models import Agent
    from agents.services import agent_register
    from core.actors import Actor
    from traces.retention.partitions import partitions_ensure

    started = time.monotonic()
    today = datetime.now(UTC).date()
    made = partitions_ensure(first=today - timedelta(days=DAYS + 1), last=today + timedelta(days=3))
    say(f"  {len(made)} day partitions made")
    agent_ids = []
    for i in range(AGENTS):
        agent = agent_register(slug=f"scale-{i:02d}", name=f"Scale agent {i}", actor=Actor.system("bench"))
        agent_ids.append(agent.pk)
    average_steps = 22.5  # 5 + mod(h, 36): 5..40
    n_traces = max(1, int((target_steps - BIG_TRACE_STEPS) / average_steps))
    spacing = DAYS * 86400 / n_traces
    with connection.cursor() as cur:
        cur.execute(FILL_TRACES, {"agents": agent_ids, "n": n_traces, "spacing": spacing})
        cur.execute("SELECT min(id), max(id) FROM traces_trace")
        lo, hi = cur.fetchone()
        for chunk in range(lo, hi + 1, CHUNK_TRACES):
            cur.execute(FILL_STEPS, {"lo": chunk, "hi": chunk + CHUNK_TRACES})
            cur.execute("SELECT count(*) FROM traces_step")
            say(f"  built {cur.fetchone()[0]:,} steps in {duration(time.monotonic() - started)}")
        # the viewer's trace: 100,000 steps, one hour old
        big_agent = Agent.objects.get(slug="scale-00")
        cur.execute(
            f"INSERT INTO traces_trace ({TRACE_COLUMNS}) VALUES (md5('big-trace'), %s, 'sess-big', 'user-big', "
            "'other', 'a long run', '', 'ok', 'gpt-4o-2024-08-06', 'v1', now() - interval '1 hour', now(), 0, 0, 0, "
            f"{BIG_TRACE_STEPS}, {BIG_TRACE_STEPS // 2}, 0, false, '', '', '', NULL, now()) RETURNING id",
            [big_agent.pk],
        )
        big = cur.fetchone()[0]
        cur.execute(FILL_STEPS.replace("t.step_count", str(BIG_TRACE_STEPS)), {"lo": big, "hi": big + 1})
        say(f"  the viewer's trace of {BIG_TRACE_STEPS:,} steps added; VACUUM ANALYZE …")
        cur.execute("VACUUM ANALYZE traces_trace")
        cur.execute("VACUUM ANALYZE traces_step")
    say(f"built in {duration(time.monotonic() - started)}")


def timed(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up: the plan cached, the pages read once
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reads(repeat: int) -> list[str]:
    from django.db import connection  # after django_setup()
    from django.utils import timezone

    from incidents.blast_radius.export import csv_rows
    from incidents.blast_radius.selectors import blast_radius
    from incidents.blast_radius.signature import BlastSignature
    from incidents.detection.base import registry
    from traces.models import Agent, Step, Trace
    from traces.selectors.cursor import Cursor
    from traces.selectors.runs import trace_list
    from traces.selectors.trajectory import step_search, step_skeleton, step_window_last

    now = timezone.now()
    week, month = now - timedelta(days=7), now - timedelta(days=DAYS + 1)
    rare_hash = Step.objects.filter(tool_name=RARE_TOOL).values_list("action_hash", flat=True).first() or ""
    big = Trace.objects.get(trace_id=hashlib.md5(b"big-trace").hexdigest())
    agents = list(Agent.objects.filter(slug__startswith="scale-"))

    def radius(since: Any, **criteria: Any) -> Callable[[], Any]:
        return lambda: blast_radius(signature=BlastSignature(**criteria), since=since, until=now)

    def first_screen(trace: Any) -> None:
        """What the viewer's page reads: the last window of steps and the trace's skeleton."""
        step_window_last(trace=trace)
        step_skeleton(trace=trace)

    def rare_pages() -> None:
        first = trace_list(tool=RARE_TOOL)
        if first.next_cursor:
            trace_list(tool=RARE_TOOL, cursor=Cursor.decode(first.next_cursor))

    def detector(name: str) -> Callable[[], Any]:
        found = registry[name]
        return lambda: [found.run(agent=a, settings=dict(found.defaults), now=now) for a in agents]

    cases: list[tuple[str, Callable[[], Any], float]] = [
        ("blast radius by action hash, 30 days", radius(month, action_hash=rare_hash), 1.0),
        (f"blast radius by hot tool ({HOT_TOOL}), 7 days", radius(week, tool=HOT_TOOL), 1.0),
        (f"blast radius by tool + argument substring ({ARG_SUBSTRING}), 7 days",
         radius(week, tool=HOT_TOOL, args=ARG_SUBSTRING), 1.0),
        (f"blast radius by argument substring alone ({ARG_SUBSTRING}), 7 days", radius(week, args=ARG_SUBSTRING), 1.0),
        (f"blast radius by regex ({ARG_REGEX}), 7 days", radius(week, args=ARG_REGEX), 1.0),
        ("blast-radius CSV, hot tool, 7 days",
         lambda: sum(1 for _ in csv_rows(signature=BlastSignature(tool=HOT_TOOL), since=week, until=now)), 1.0),
        (f"viewer first screen, {BIG_TRACE_STEPS:,}-step trace",
         lambda: first_screen(big), 0.15),
        (f"in-trace search, {BIG_TRACE_STEPS:,}-step trace", lambda: step_search(trace=big, query="A-99999"), 0.3),
        (f"trace list filtered by a rare tool ({RARE_TOOL}), first and next page", rare_pages, 0.15),
        ("trace list, first page (no filter)", lambda: trace_list(), 0.15),
        *[(f"scheduled detector {name}, all {AGENTS} agents", detector(name), 10.0)
          for name in ("refusal_shift", "tool_error_spike", "length_drift")],
    ]  # fmt: skip
    lines = []
    for label, fn, target in cases:
        seconds = timed(fn, repeat)
        mark = "✔" if seconds <= target else "✘"
        line = f"{label}: median {seconds * 1000:,.0f} ms (target ≤ {target * 1000:,.0f} ms) {mark}"
        say(line)
        lines.append("  " + line)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)), count(*), (SELECT count(*) FROM traces_step) "
            "FROM pg_inherits WHERE inhparent = 'traces_step'::regclass"
        )
        size, partitions, count = cur.fetchone()
    line = (
        f"steps table: {count:,} steps in {partitions} partitions, {float(size) / 1e9:.2f} GB with its indexes "
        f"({float(size) / count:,.0f} bytes a step)"
    )
    say(line)
    return [*lines, "  " + line]


def retention_once() -> list[str]:
    """Retention as beat runs it, keeping DAYS - 2 days: the oldest day partitions go (the database changes)."""
    from traces.retention.services import retention_run  # after django_setup()

    start = time.perf_counter()
    report = retention_run(days=DAYS - 2)
    seconds = time.perf_counter() - start
    line = (
        f"retention, keeping {DAYS - 2} days: dropped {len(report.dropped)} day partitions ({report.steps:,} steps) "
        f"and {report.traces:,} traces in {seconds * 1000:,.0f} ms"
    )
    say(line)
    return ["  " + line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse a database holding --steps steps; keep it")
    args = parser.parse_args()
    started = time.monotonic()
    gate_push.SCRATCH_DB = SCRATCH_DB
    url = existing(args.steps) if args.keep else None
    if url is None:
        url = gate_push.scratch_database()
        os.environ["DATABASE_URL"] = url
        django_setup()  # migrates the new database
        say(f"building ~{args.steps:,} steps in {SCRATCH_DB}")
        build(args.steps)
    else:
        os.environ["DATABASE_URL"] = url
        django_setup()
        say(f"reusing {SCRATCH_DB}")
    try:
        lines = reads(args.repeat)
        if not args.keep:
            lines += retention_once()
    finally:
        from django.db import connections  # after django_setup()

        connections.close_all()
        if not args.keep:
            gate_push.drop_scratch(url)
    summary(lines, started)


def existing(steps: int) -> str | None:
    """The scratch database's URL when it exists and holds about ``steps`` steps (±5 %), else None."""
    if os.environ.get("DATABASE_URL"):
        url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + SCRATCH_DB
    else:
        sys.path.insert(0, str(gate_push.ROOT))
        from firebreak import embedded

        info = embedded.ensure_postgres(gate_push.ROOT / "var")
        host = f"{quote(info.socket_dir, safe='')}:{info.port}"
        url = f"postgres://postgres@{host}/{SCRATCH_DB}"
    try:
        with psycopg.connect(gate_push._libpq(url)) as conn:
            held = conn.execute("SELECT count(*) FROM traces_step").fetchone()
    except psycopg.Error:
        return None
    return url if held and abs(held[0] - steps) <= steps * 0.05 else None


if __name__ == "__main__":
    main()
