"""The trace list over 1,000,000 traces: ``GET /traces/`` and its filters, in a scratch database.

The scratch database firebreak_bench_list sits on the project's PostgreSQL server; it is built set-based once
(generate_series) and reused while it holds ``--list-traces`` traces. The timing runs in a child process (this
file, run by bench/ingest.py: ``python bench/trace_list.py --traces N --requests N``) pointed at it with
DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from harness import ROOT, bench_user, django_setup, duration, percentile, say, time_get

LIST_DB = "firebreak_bench_list"
LIST_AGENTS = (  # slug, share of the traces in percent
    ("support-bot", 30), ("billing-agent", 20), ("refund-agent", 12), ("returns-agent", 10), ("kyc-checker", 8),
    ("sales-assistant", 6), ("shipping-agent", 5), ("fraud-triage", 4), ("onboarding-bot", 3), ("ops-copilot", 2),
)  # fmt: skip
LIST_TOOLS = (  # tool, share of the traces in per mille (each trace calls one)
    ("delete_account", 1), ("lookup_order", 399), ("search_kb", 200), ("send_email", 150), ("issue_refund", 100),
    ("update_ticket", 100), ("escalate_to_human", 50),
)  # fmt: skip
TRACE_COLUMNS = (
    "trace_id, agent_id, session_id, user_id, input_class, root_input, root_output, status, model_version, "
    "prompt_version, started_at, ended_at, tokens_in, tokens_out, cost, step_count, tool_call_count, error_count, "
    "is_golden, flagged_span_id, flag_note, flagged_by, flagged_at, updated_at"
)
FILL_TRACES = f"""
INSERT INTO traces_trace ({TRACE_COLUMNS})
SELECT md5('fbl-' || g), (%(agents)s::bigint[])[1 + mod(h1, 100)], 'sess-' || (g / 3), 'user-' || mod(h2, 20000),
       (ARRAY['order_status', 'refund', 'account', 'shipping', 'other'])[1 + mod(h3, 5)],
       'Hi, where is my order A-' || (100000 + mod(h2, 900000)) || '? It was due on Monday and the tracking page '
           || 'has not changed for three days.',
       CASE WHEN g > %(n)s - 100 THEN '' ELSE 'Your order A-' || (100000 + mod(h2, 900000)) || ' left the '
           || 'warehouse yesterday; the carrier expects to deliver it within two business days.' END,
       st.status, (ARRAY['gpt-4o-mini-2024-07-18', 'gpt-4o-2024-08-06'])[1 + mod(h1, 2)], 'v' || (1 + mod(h3, 4)),
       ts, CASE WHEN st.status = 'running' THEN NULL ELSE ts + make_interval(secs => 3 + mod(h2, 40)) END,
       500 + mod(h1, 8000), 20 + mod(h2, 600), round((500 + mod(h1, 8000)) * 0.15e-6 + (20 + mod(h2, 600)) * 0.6e-6, 6),
       2 + mod(h2, 2), 1, CASE WHEN st.status = 'error' THEN 1 ELSE 0 END, mod(h3, 5000) = 7,
       CASE WHEN mod(h1 / 100, 1000) = 3 THEN left(md5('fbl-s2-' || g), 16) ELSE '' END,
       CASE WHEN mod(h1 / 100, 1000) = 3 THEN 'wrong refund amount' ELSE '' END,
       CASE WHEN mod(h1 / 100, 1000) = 3 THEN 'oncall@example.com' ELSE '' END,
       CASE WHEN mod(h1 / 100, 1000) = 3 THEN ts + interval '1 hour' END, now()
FROM (
    SELECT g, abs(hashtext('a' || g)::bigint) AS h1, abs(hashtext('b' || g)::bigint) AS h2,
           abs(hashtext('c' || g)::bigint) AS h3,
           %(newest)s::timestamptz - make_interval(secs => (%(n)s - g) * %(spacing)s) AS ts
    FROM generate_series(%(lo)s, %(hi)s) AS g
) AS r
CROSS JOIN LATERAL (
    SELECT CASE WHEN g > %(n)s - 100 THEN 'running' WHEN mod(h3, 1000) < 40 THEN 'error'
                WHEN mod(h3, 1000) < 45 THEN 'killed' ELSE 'ok' END AS status
) AS st
"""
FILL_STEPS = """
INSERT INTO traces_step (
    trace_id, span_id, parent_span_id, kind, name, agent_name, tool_name, tool_arguments, action_hash, input, output,
    model, tokens_in, tokens_out, cost, finish_reason, status, error_message, started_at, ended_at, attributes
)
SELECT t.id, left(md5(t.trace_id || n), 16), CASE WHEN n = 1 THEN '' ELSE left(md5(t.trace_id || 1), 16) END,
       k.kind, k.name, '', k.tool, k.args, CASE WHEN k.tool = '' THEN '' ELSE left(md5(k.tool || k.args::text), 16) END,
       CASE k.kind WHEN 'agent' THEN t.root_input WHEN 'llm' THEN 'Summarise the tool result for the customer.'
            ELSE '' END,
       CASE k.kind WHEN 'agent' THEN t.root_output WHEN 'llm' THEN 'The order has shipped and will arrive soon.'
            ELSE '{"status": "shipped", "carrier": "dhl", "eta_days": 2}' END,
       CASE WHEN k.kind = 'llm' THEN t.model_version ELSE '' END,
       CASE WHEN k.kind = 'llm' THEN t.tokens_in ELSE 0 END, CASE WHEN k.kind = 'llm' THEN t.tokens_out ELSE 0 END,
       CASE WHEN k.kind = 'llm' THEN t.cost ELSE 0 END, CASE WHEN k.kind = 'llm' THEN 'stop' ELSE '' END,
       CASE WHEN n = 2 AND t.status = 'error' THEN 'error' ELSE 'ok' END,
       CASE WHEN n = 2 AND t.status = 'error' THEN 'upstream timed out' ELSE '' END,
       t.started_at + make_interval(secs => n - 1), t.started_at + make_interval(secs => n), '{}'::jsonb
FROM traces_trace t
CROSS JOIN LATERAL generate_series(1, t.step_count) AS n
CROSS JOIN LATERAL (
    SELECT CASE n WHEN 1 THEN 'agent' WHEN 2 THEN 'tool' ELSE 'llm' END AS kind,
           CASE n WHEN 1 THEN 'invoke_agent' WHEN 2 THEN 'execute_tool ' || tl.tool ELSE 'chat' END AS name,
           CASE WHEN n = 2 THEN tl.tool ELSE '' END AS tool,
           CASE WHEN n = 2 THEN jsonb_build_object('order_id', 'A-' || mod(t.id, 900000)) END AS args
    FROM (SELECT (%(tools)s::text[])[1 + mod(abs(hashtext(t.trace_id)::bigint), 1000)] AS tool) AS tl
) AS k
WHERE t.id BETWEEN %(lo)s AND %(hi)s
"""


def list_database_url(settings_dict: dict, name: str) -> str:
    """A DATABASE_URL for database ``name`` on the server of ``settings_dict`` (a socket directory or a host)."""
    host = settings_dict.get("HOST") or "localhost"
    host = quote(host, safe="") if host.startswith("/") else host
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{name}"


def list_part(args) -> dict:
    """Create the scratch database if missing (or drop and re-create it), then run the child that fills and times."""
    from django.db import connection  # after django_setup(), as every project import here

    with connection.cursor() as cur:
        if args.rebuild_list_db:
            cur.execute(f'DROP DATABASE IF EXISTS "{LIST_DB}" WITH (FORCE)')
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [LIST_DB])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{LIST_DB}"')
    env = {**os.environ, "DATABASE_URL": list_database_url(connection.settings_dict, LIST_DB)}
    command = [sys.executable, str(Path(__file__).resolve()), "--traces", str(args.list_traces)]
    command += ["--requests", str(args.list_requests)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    result: dict = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("LIST-RESULT "):
            result = json.loads(line[len("LIST-RESULT ") :])
        else:
            print(line, end="", flush=True)
    if proc.wait() != 0 or not result:
        raise RuntimeError(f"the list child failed (exit code {proc.returncode})")
    return result


def list_fill(n: int) -> None:
    from django.db import connection  # after django_setup(), as every project import here

    from agents.models import Agent
    from agents.services import agent_register
    from core.actors import Actor

    for slug, _ in LIST_AGENTS:
        if not Agent.objects.filter(slug=slug).exists():
            agent_register(
                slug=slug, name=slug.replace("-", " ").title(), actor=Actor.system("bench"), environment="production"
            )
    ids = dict(Agent.objects.filter(slug__in=[s for s, _ in LIST_AGENTS]).values_list("slug", "pk"))
    agents = [ids[slug] for slug, share in LIST_AGENTS for _ in range(share)]
    tools = [tool for tool, share in LIST_TOOLS for _ in range(share)]
    assert len(agents) == 100 and len(tools) == 1000
    started = time.monotonic()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'traces_trace' "
            "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'"
        )
        missing = {r[0] for r in cur.fetchall()} - {c.strip() for c in TRACE_COLUMNS.split(",")} - {"id"}
        if missing:
            raise RuntimeError(f"traces_trace has new required columns the fill does not know: {sorted(missing)}")
        cur.execute("TRUNCATE traces_trace, traces_step CASCADE")
        cur.execute("SET synchronous_commit = off")
        cur.execute("SELECT now()")
        newest = cur.fetchone()[0]
        spacing = 30 * 86400 / n  # 30 days, newest now
        chunk = 100_000
        for lo in range(1, n + 1, chunk):
            hi = min(n, lo + chunk - 1)
            params = {"agents": agents, "n": n, "newest": newest, "spacing": spacing, "lo": lo, "hi": hi}
            cur.execute(FILL_TRACES, params)
        say(f"  list: {n:,} traces inserted in {time.monotonic() - started:.0f} s")
        cur.execute("SELECT min(id), max(id) FROM traces_trace")
        first, last = cur.fetchone()
        for lo in range(first, last + 1, chunk):
            cur.execute(FILL_STEPS, {"tools": tools, "lo": lo, "hi": lo + chunk - 1})
        cur.execute("SELECT count(*) FROM traces_step")
        steps = cur.fetchone()[0]
        say(f"  list: {steps:,} steps inserted; {time.monotonic() - started:.0f} s so far; VACUUM ANALYZE …")
        cur.execute("VACUUM ANALYZE traces_trace")
        cur.execute("VACUUM ANALYZE traces_step")
        cur.execute("VACUUM ANALYZE agents_agent")
    say(f"  list: scratch database {LIST_DB} built in {duration(time.monotonic() - started)}")


def list_child(args) -> None:
    """In the scratch database (DATABASE_URL): migrate, fill if needed, time ``GET /traces/`` and its filters."""
    django_setup()
    from django.db import connection  # after django_setup(), as every project import here
    from django.test import Client

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM traces_trace")
        have = cur.fetchone()[0]
    if have != args.list_traces:
        say(f"  list: {LIST_DB} holds {have:,} traces, not {args.list_traces:,}: filling it (set-based SQL) …")
        list_fill(args.list_traces)
    else:
        say(f"  list: reusing {LIST_DB} ({have:,} traces; --rebuild-list-db to rebuild)")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*), max(started_at), min(started_at) FROM traces_trace")
        n, newest, oldest = cur.fetchone()
        cur.execute("SELECT count(*) FROM traces_step")
        steps = cur.fetchone()[0]
        cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cur.fetchone()[0]
    say(
        f"  list: {n:,} traces and {steps:,} steps over {(newest - oldest).days} days, {len(LIST_AGENTS)} agents, "
        f"database {size}"
    )
    client = Client()
    client.force_login(bench_user())
    until = (newest + timedelta(minutes=1)).astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
    window = {"since": (until - timedelta(hours=1)).isoformat(timespec="minutes"),
              "until": until.isoformat(timespec="minutes")}  # fmt: skip
    filters = [
        ("no filter (first page)", {}),
        (f"agent={LIST_AGENTS[2][0]} ({LIST_AGENTS[2][1]}%)", {"agent": LIST_AGENTS[2][0]}),
        (f"agent={LIST_AGENTS[-1][0]} ({LIST_AGENTS[-1][1]}%)", {"agent": LIST_AGENTS[-1][0]}),
        ("status=error (4%)", {"status": "error"}),
        ("tool=lookup_order (40%)", {"tool": "lookup_order"}),
        ("tool=delete_account (0.1%)", {"tool": "delete_account"}),
        ("1-hour window (since/until)", window),
        ("flagged=yes (0.1%)", {"flagged": "yes"}),
        ("agent + status=error + 7 days", {"agent": LIST_AGENTS[0][0], "status": "error", "window": "7d"}),
        ("agent 2% + tool 0.1% (a rare pair)", {"agent": LIST_AGENTS[-1][0], "tool": "delete_account"}),
    ]  # fmt: skip
    rows = {}
    for label, params in filters:
        url = "/traces/" + (f"?{urlencode(params)}" if params else "")
        samples, status, body = time_get(client, url, args.list_requests, warmup=2)
        rows[label] = statistics.median(samples)
        shown = len(set(re.findall(rb"/traces/[0-9a-f]{32}/", body)))
        median, p95 = statistics.median(samples), percentile(samples, 95)
        say(
            f"list    GET /traces/ {label:<38} median {median:7.1f} ms, p95 {p95:7.1f}"
            f" ms over {len(samples)} requests (HTTP {status}, {shown} traces shown, {len(body) / 1024:,.0f} KiB)"
        )
    print("LIST-RESULT " + json.dumps({"rows": rows, "traces": n}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", dest="list_traces", type=int, required=True, help="traces in the database")
    parser.add_argument("--requests", dest="list_requests", type=int, required=True, help="timed requests per filter")
    list_child(parser.parse_args())


if __name__ == "__main__":
    main()
