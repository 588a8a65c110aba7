"""End to end on a real Celery worker and real Redis: ingest commits, the worker detects and pauses."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from conftest import TEST_REDIS_DB

ROOT = Path(__file__).resolve().parents[3]


def _test_database_url() -> str:
    """A DATABASE_URL for the test database (dj-database-url reads a percent-encoded socket dir as HOST)."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(str(db['PASSWORD']), safe='')}" if db.get("PASSWORD") else ""
    host = quote(db.get("HOST") or "localhost", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def worker():
    env = os.environ | {"DATABASE_URL": _test_database_url(), "FIREBREAK_REDIS_DB": str(TEST_REDIS_DB)}
    if not settings.EMBEDDED_REDIS:
        env["REDIS_URL"] = settings.REDIS_URL  # else the worker finds the same embedded Redis socket
    celery = Path(sys.executable).with_name("celery")
    proc = subprocess.Popen(
        [
            str(celery),
            "-A",
            "firebreak",
            "worker",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "-Q",
            "celery",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.django_db(transaction=True)
def test_worker_pauses_a_runaway_loop_after_ingest(worker, make_agent, make_spans, redis_client):
    from agents.models import Agent, AuditAction, AuditEntry, GateState
    from incidents.models import Alert
    from traces.services import trace_ingest

    agent = make_agent("loop-bot")
    steps = [{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "ORD-4242"}} for _ in range(50)]
    trace_ingest(spans=make_spans(agent="loop-bot", steps=steps))  # commits; spans_ingested queues the task

    deadline, doc = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        raw = redis_client.get("firebreak:gate:loop-bot")
        doc = json.loads(raw) if raw else None
        if doc and doc["state"] == GateState.PAUSED:
            break
        if worker.poll() is not None:
            pytest.fail(f"celery worker exited:\n{worker.stdout.read()}")
        time.sleep(0.1)
    if not doc or doc["state"] != GateState.PAUSED:
        worker.terminate()
        pytest.fail(f"gate not paused within 30 s ({doc}); worker log:\n{worker.communicate(timeout=15)[0]}")
    assert Agent.objects.get(pk=agent.pk).state == GateState.PAUSED
    alert = Alert.objects.get(agent=agent, detector="action_repeat")
    assert "50× in a row" in alert.title
    assert AuditEntry.objects.get(agent=agent, action=AuditAction.PAUSE).actor_label == "detector:action_repeat"
