"""The detection benchmark: ingest → pause latency with a real worker, and the scheduled detectors at 1M steps.

Usage: .venv/bin/python bench/detection.py [--runs N] [--steps N] [--only latency|scheduled]

(1) Latency. Starts gunicorn (as bench/gate.py does) and a real Celery worker (``celery -A firebreak worker
--pool solo``, same environment). For each run, a new trajectory of agent ``bench-detection`` is sent through
``POST /api/v1/ingest``: two identical ``lookup_order`` calls, then the third in its own request. The clock
starts when that request is sent and stops when ``GET /api/v1/agents/bench-detection/gate`` (polled every
10 ms) reads ``paused`` — the path is spans_ingested → incidents.detection.tasks.detect_batch_task →
incidents.detection.runner.detect_batch → action_repeat (rule: pause). Between runs the agent is resumed
through the API with a reason. Target: p99 ≤ 2 s.

(2) Scheduled detectors. Agent ``bench-scheduled`` gets ~N steps (default 1,000,000) over the last 7 days,
written with set-based SQL (generate_series); each scheduled detector of
``incidents.detection.schedule`` then runs once for that agent and is timed. Target: each < 10 s.
The bench agents' traces are deleted at the start of each run.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from datetime import UTC, datetime

import httpx

from harness import bench_user, celery_worker, django_setup, gunicorn, machine, percentile, say

AGENT = "bench-detection"
SCHED_AGENT = "bench-scheduled"
KEY_NAME = "bench-detection"
TOOL = "lookup_order"
LATENCY_TARGET = 2.0
SCHEDULED_TARGET = 10.0


def _agent(slug: str, description: str):
    from agents.models import Agent  # after django_setup(), as every project import here
    from agents.services import agent_register
    from core.actors import Actor

    return Agent.objects.filter(slug=slug).first() or agent_register(
        slug=slug, name=slug.replace("-", " ").title(), actor=Actor.system("bench"), description=description,
        environment="staging", allowed_tools=[TOOL],
    )  # fmt: skip


def _delete_traces(agent) -> None:
    from django.db import connection  # after django_setup()

    with connection.cursor() as cur:
        cur.execute("DELETE FROM incidents_alert WHERE agent_id = %s", [agent.pk])
        cur.execute("DELETE FROM traces_step WHERE trace_id IN (SELECT id FROM traces_trace WHERE agent_id = %s)",
                    [agent.pk])  # fmt: skip
        cur.execute("DELETE FROM traces_trace WHERE agent_id = %s", [agent.pk])


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _span(trace_id: str, span_id: str, parent: str | None, name: str, t: float, **extra) -> dict:
    span = {"trace_id": trace_id, "span_id": span_id, "name": name, "start_time": _iso(t),
            "end_time": _iso(t + 0.01), "agent": AGENT, **extra}  # fmt: skip
    if parent:
        span["parent_span_id"] = parent
    return span


def latency(runs: int) -> list[float]:
    from django.db.models import Q  # after django_setup(), as every project import here
    from django.utils import timezone

    from agents.gate import gate_publish
    from agents.keys.services import api_key_create
    from agents.models import ApiKey
    from agents.services import agent_resume
    from core.actors import Actor

    agent = _agent(AGENT, "Used by bench/detection.py: paused by the loop detector and resumed, once per run.")
    user = bench_user()
    ApiKey.objects.filter(Q(user=user) | Q(agent=agent), name=KEY_NAME, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    _, user_key = api_key_create(user=user, scopes=["api"], name=KEY_NAME)
    _, agent_key = api_key_create(agent=agent, scopes=["ingest", "gate"], name=KEY_NAME)
    _delete_traces(agent)
    if agent.state != "active":
        agent_resume(agent=agent, actor=Actor.person(user), reason="bench: start active")
    agent.refresh_from_db()
    gate_publish([agent])
    samples: list[float] = []
    with gunicorn(2, 4) as (base, _), celery_worker():
        ingest = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {agent_key}"}, timeout=10)
        admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {user_key}"}, timeout=10)
        with ingest, admin:
            for i in range(runs):
                trace_id, root = secrets.token_hex(16), secrets.token_hex(8)
                t0 = time.time()
                args = {"order_id": f"ord-{i}"}
                call = {"kind": "tool", "tool_name": TOOL, "tool_arguments": args, "status": "ok"}
                first = [{**_span(trace_id, root, None, "agent run", t0, kind="agent"), "end_time": None}]
                first += [_span(trace_id, secrets.token_hex(8), root, TOOL, t0 + k * 0.02, **call) for k in (1, 2)]
                response = ingest.post("/api/v1/ingest", json={"spans": first})
                if response.status_code >= 300:
                    raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")
                third = [_span(trace_id, secrets.token_hex(8), root, TOOL, t0 + 0.06, **call)]
                sent = time.monotonic()
                response = ingest.post("/api/v1/ingest", json={"spans": third})
                if response.status_code >= 300:
                    raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")
                deadline = sent + 30
                while True:
                    state = ingest.get(f"/api/v1/agents/{AGENT}/gate").json().get("state")
                    if state == "paused":
                        samples.append(time.monotonic() - sent)
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"run {i}: the gate did not read paused within 30 s (state {state})")
                    time.sleep(0.01)
                response = admin.post(f"/api/v1/agents/{AGENT}/resume", json={"reason": "bench: next detection run"})
                if response.status_code != 200:
                    raise RuntimeError(f"resume answered {response.status_code}: {response.text[:300]}")
    return samples


SEED_SQL = """
WITH t AS (
  INSERT INTO traces_trace (trace_id, agent_id, session_id, user_id, input_class, root_input, root_output, status,
      model_version, prompt_version, started_at, ended_at, tokens_in, tokens_out, cost, step_count, tool_call_count,
      error_count, is_golden, flagged_span_id, flag_note, flagged_by, updated_at)
  SELECT md5('bench-sched-' || g), %(agent)s, '', 'user-' || (g %% 500), 'class-' || (g %% 7), 'question ' || g,
      repeat('answer ', 5 + (g %% 40)), CASE WHEN g %% 50 = 0 THEN 'error' ELSE 'ok' END, 'm1',
      CASE WHEN g %% 2 = 0 THEN 'p1' ELSE 'p2' END,
      now() - (g::float / %(traces)s) * interval '7 days', now() - (g::float / %(traces)s) * interval '7 days'
        + interval '20 seconds', 0, 0, 0, %(per)s, %(per)s / 2, 0, false, '', '', '', now()
  FROM generate_series(1, %(traces)s) g
  RETURNING id, started_at
)
INSERT INTO traces_step (trace_id, span_id, parent_span_id, kind, name, agent_name, tool_name, tool_arguments,
    action_hash, input, output, model, tokens_in, tokens_out, cost, finish_reason, status, error_message,
    started_at, ended_at, attributes)
SELECT t.id, lpad(to_hex(s), 16, '0'), '', CASE WHEN s %% 2 = 0 THEN 'llm' ELSE 'tool' END,
    CASE WHEN s %% 2 = 0 THEN 'chat' ELSE 'tool-' || (s %% 5) END, '',
    CASE WHEN s %% 2 = 0 THEN '' ELSE 'tool-' || (s %% 5) END,
    CASE WHEN s %% 2 = 0 THEN NULL ELSE jsonb_build_object('q', t.id %% 97) END,
    CASE WHEN s %% 2 = 0 THEN '' ELSE substr(md5(t.id::text || s), 1, 16) END,
    '', CASE WHEN s %% 2 = 0 THEN repeat('x', (50 + (t.id %% 300))::int) ELSE '' END,
    CASE WHEN s %% 2 = 0 THEN 'm1' ELSE '' END, 100 + (t.id %% 50), 40 + (t.id %% 90), 0.001,
    CASE WHEN s %% 2 = 0 THEN 'stop' ELSE '' END,
    CASE WHEN s %% 2 = 1 AND (t.id + s) %% 40 = 0 THEN 'error' ELSE 'ok' END, '',
    t.started_at + s * interval '1 second', t.started_at + s * interval '1 second' + interval '500 ms', '{}'::jsonb
FROM t, generate_series(1, %(per)s) s
"""


def scheduled(steps: int) -> dict[str, float] | None:
    try:  # after django_setup(), as every project import here; and the detectors may be absent
        from incidents.detection import schedule  # noqa: F401
    except ImportError:
        say("scheduled detectors not available")
        return None
    from django.db import connection
    from django.utils import timezone

    from incidents.detection.base import registry
    from incidents.detection.engine import detector_settings, findings_handle

    agent = _agent(SCHED_AGENT, "Used by bench/detection.py: ~1M steps over 7 days for the scheduled detectors.")
    _delete_traces(agent)
    per = 10
    started = time.monotonic()
    with connection.cursor() as cur:
        cur.execute(SEED_SQL, {"agent": agent.pk, "traces": max(1, steps // per), "per": per})
        cur.execute("ANALYZE traces_trace")
        cur.execute("ANALYZE traces_step")
    say(
        f"seeded {steps // per * per:,} steps in {steps // per:,} traces over 7 days: "
        f"{time.monotonic() - started:.1f} s"
    )
    now = timezone.now()
    times = {}
    for name in sorted(n for n, spec in registry.items() if spec.kind == "scheduled"):
        _, thresholds, _ = detector_settings(name, agent)
        t0 = time.monotonic()
        try:
            findings = registry[name].run(agent=agent, settings=thresholds, now=now)
        except Exception as exc:  # report, keep going
            say(f"scheduled {name}: FAILED {exc.__class__.__name__}: {exc}")
            continue
        times[name] = time.monotonic() - t0
        findings_handle(findings)
        mark = "ok" if times[name] < SCHEDULED_TARGET else "OVER TARGET"
        say(f"scheduled {name}: {times[name]:.2f} s ({len(findings)} findings) [{mark}]")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["latency", "scheduled"])
    args = parser.parse_args()
    django_setup()
    summary = []
    if args.only in (None, "latency"):
        try:
            import incidents.detection.tasks  # noqa: F401
        except ImportError:
            say("detection pipeline not available (incidents.detection.tasks)")
        else:
            samples = latency(args.runs)
            p50, p99 = statistics.median(samples), percentile(samples, 99)
            say(f"ingest→paused runs: {len(samples)}")
            say(f"ingest→paused p50: {p50 * 1000:.0f} ms")
            say(f"ingest→paused p99: {p99 * 1000:.0f} ms")
            say(f"ingest→paused max: {max(samples) * 1000:.0f} ms")
            summary.append(f"ingest→paused p99 {p99 * 1000:.0f} ms (target ≤ {LATENCY_TARGET:g} s): "
                           + ("met" if p99 <= LATENCY_TARGET else "MISSED"))  # fmt: skip
    if args.only in (None, "scheduled"):
        times = scheduled(args.steps)
        if times:
            worst = max(times, key=times.__getitem__)
            summary.append(f"scheduled detectors at {args.steps:,} steps: slowest {worst} {times[worst]:.2f} s "
                           f"(target < {SCHEDULED_TARGET:g} s each): "
                           + ("met" if times[worst] < SCHEDULED_TARGET else "MISSED"))  # fmt: skip
    say("--- summary ---")
    for line in summary:
        say(line)
    say(f"machine: {machine()}")


if __name__ == "__main__":
    main()
