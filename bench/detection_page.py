"""The paging benchmark: from the span that trips a detector to the page leaving Firebreak.

Usage: .venv/bin/python bench/detection_page.py [--runs N] [--stack make-run|worker]

Starts a local stand-in for PagerDuty's Events API v2 (a ``http.server`` thread in this process that checks
each body against the documented schema and answers 202), then Firebreak with ``FIREBREAK_PAGERDUTY_ROUTING_KEY``
set and ``FIREBREAK_PAGERDUTY_EVENTS_URL`` pointing at the stand-in: ``--stack make-run`` (default) runs
everything as ``make run`` does (``python -m firebreak.supervise``: gate server, gunicorn, Celery worker and
beat, PostgreSQL and Redis of its own under a temporary var directory, as bench/faults.py); ``--stack worker``
starts only gunicorn and a real Celery worker (``--pool solo``) on the project's services, as
bench/detection.py. Agent ``bench-page`` has the
``action_repeat`` detector's rule set to ``page``. For each run a new trajectory is sent through
``POST /api/v1/ingest``: two identical ``lookup_order`` calls, then the third in its own request. The clock
starts when that request is sent and stops when the trigger event for the new alert arrives at the stand-in
— the path is spans_ingested → detect_batch_task → action_repeat → findings_handle (alert + delivery row in
one transaction) → on commit pagerduty_send_task → Events API. Target: p99 ≤ 5 s.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness import bench_user, celery_worker, django_setup, free_port, gunicorn, machine, percentile, say

AGENT = "bench-page"
KEY_NAME = "bench-detection-page"
TOOL = "lookup_order"
TARGET = 5.0
ROUTING_KEY = "benchR0UT1NGK3Y0123456789abcdefA"  # 32 characters, never leaves this machine


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _span(trace_id: str, span_id: str, parent: str | None, name: str, t: float, **extra) -> dict:
    span = {"trace_id": trace_id, "span_id": span_id, "name": name, "start_time": _iso(t),
            "end_time": _iso(t + 0.01), "agent": AGENT, **extra}  # fmt: skip
    if parent:
        span["parent_span_id"] = parent
    return span


def _setup():
    """The bench agent (active, rule page for action_repeat), its old traces and alerts gone, and a key."""
    from django.db import connection  # after django_setup(), as every project import here
    from django.db.models import Q
    from django.utils import timezone

    from agents.gate import gate_publish
    from agents.keys.services import api_key_create
    from agents.models import Agent, ApiKey
    from agents.services import agent_register, agent_resume
    from core.actors import Actor
    from incidents.alerts.services import detector_setting_save

    agent = Agent.objects.filter(slug=AGENT).first() or agent_register(
        slug=AGENT, name="Bench Page", actor=Actor.system("bench"), environment="staging", allowed_tools=[TOOL],
        description="Used by bench/detection_page.py: its loops page a stand-in PagerDuty.",
    )  # fmt: skip
    user = bench_user()
    if agent.state != "active":
        agent_resume(agent=agent, actor=Actor.person(user), reason="bench: start active")
    detector_setting_save(detector="action_repeat", agent=agent, enabled=True, thresholds={}, rule="page",
                          actor=Actor.person(user))  # fmt: skip
    with connection.cursor() as cur:
        cur.execute("DELETE FROM incidents_delivery WHERE agent_id = %s OR alert_id IN "
                    "(SELECT id FROM incidents_alert WHERE agent_id = %s)", [agent.pk, agent.pk])  # fmt: skip
        cur.execute("DELETE FROM incidents_alert WHERE agent_id = %s", [agent.pk])
        cur.execute("DELETE FROM traces_step WHERE trace_id IN (SELECT id FROM traces_trace WHERE agent_id = %s)",
                    [agent.pk])  # fmt: skip
        cur.execute("DELETE FROM traces_trace WHERE agent_id = %s", [agent.pk])
    ApiKey.objects.filter(Q(agent=agent), name=KEY_NAME, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _, agent_key = api_key_create(agent=agent, scopes=["ingest", "gate"], name=KEY_NAME)
    agent.refresh_from_db()
    gate_publish([agent])
    return agent_key


@contextmanager
def stack(kind: str, var: Path | None) -> Iterator[str]:
    """Firebreak's processes with this process's environment; yields the base URL."""
    if kind == "worker":
        with gunicorn(2, 4) as (base, _), celery_worker():
            yield base
        return
    from faults import Supervised  # make run's supervisord, as the fault benchmark drives it

    assert var is not None
    run = Supervised(var, free_port())
    try:
        yield run.base
    finally:
        run.stop()


def latency(runs: int, kind: str, var: Path | None) -> tuple[list[float], int]:
    from incidents.integrations.pagerduty.tests.fake_pagerduty import fake_pagerduty  # after django_setup()

    agent_key = _setup()
    samples: list[float] = []
    with fake_pagerduty() as pd:
        os.environ["FIREBREAK_PAGERDUTY_ROUTING_KEY"] = ROUTING_KEY  # the web and worker processes inherit it
        os.environ["FIREBREAK_PAGERDUTY_EVENTS_URL"] = pd.url
        with stack(kind, var) as base:
            ingest = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {agent_key}"}, timeout=10)
            with ingest:
                for i in range(runs):
                    trace_id, root = secrets.token_hex(16), secrets.token_hex(8)
                    t0 = time.time()
                    call = {"kind": "tool", "tool_name": TOOL, "tool_arguments": {"order_id": f"ord-{i}"},
                            "status": "ok"}  # fmt: skip
                    first = [{**_span(trace_id, root, None, "agent run", t0, kind="agent"), "end_time": None}]
                    first += [_span(trace_id, secrets.token_hex(8), root, TOOL, t0 + k * 0.02, **call) for k in (1, 2)]
                    response = ingest.post("/api/v1/ingest", json={"spans": first})
                    if response.status_code >= 300:
                        raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")
                    third = [_span(trace_id, secrets.token_hex(8), root, TOOL, t0 + 0.06, **call)]
                    before = len(pd.accepted)
                    sent = time.time()
                    response = ingest.post("/api/v1/ingest", json={"spans": third})
                    if response.status_code >= 300:
                        raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")
                    deadline = time.monotonic() + 30
                    while len(pd.accepted) <= before:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"run {i}: no page arrived within 30 s")
                        time.sleep(0.005)
                    body = pd.accepted[before]
                    if body["event_action"] != "trigger" or not body["dedup_key"].startswith("firebreak-alert-"):
                        raise RuntimeError(f"run {i}: unexpected event {body['event_action']} {body['dedup_key']}")
                    samples.append(pd.arrivals[before] - sent)
        if pd.invalid:
            raise RuntimeError(f"the stand-in refused {len(pd.invalid)} bodies: {pd.invalid[:2]}")
    return samples, pd.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--stack", choices=["make-run", "worker"], default="make-run")
    args = parser.parse_args()
    var = None
    if args.stack == "make-run":  # a var directory of its own, as bench/faults.py
        var = Path(tempfile.mkdtemp(prefix="fb-page-"))
        for name in ("DATABASE_URL", "REDIS_URL", "FIREBREAK_SUPERVISED"):
            os.environ.pop(name, None)
        os.environ["FIREBREAK_VAR_DIR"] = str(var)
    django_setup()
    try:
        samples, requests = latency(args.runs, args.stack, var)
    finally:
        if var is not None:
            shutil.rmtree(var, ignore_errors=True)
    p50, p99 = statistics.median(samples), percentile(samples, 99)
    say(f"stack: {args.stack}")
    say(f"span→page runs: {len(samples)} (events received: {requests}, all valid)")
    say(f"span→page p50: {p50 * 1000:.0f} ms")
    say(f"span→page p99: {p99 * 1000:.0f} ms")
    say(f"span→page max: {max(samples) * 1000:.0f} ms")
    say("--- summary ---")
    say(f"span→page p99 {p99 * 1000:.0f} ms (target ≤ {TARGET:g} s): " + ("met" if p99 <= TARGET else "MISSED"))
    say(f"machine: {machine()}")


if __name__ == "__main__":
    main()
