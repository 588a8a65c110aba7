"""Detection at least once, with real processes: a worker killed mid-batch leaves the batch to be detected by
the next one, and a batch committed while the broker is down is detected once it is back."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import kombu.pools
import psycopg
import pytest
from django.db import connection

from agents.models import Agent, GateState
from firebreak.celery import app as celery_app
from firebreak.settings import celery_broker_url
from incidents.detection.tasks import detection_backlog_drain_task
from incidents.detection.tests.test_worker import _test_database_url
from incidents.models import Alert, DetectionBacklog
from traces.services import trace_ingest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
LOOP = [{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "ORD-4242"}} for _ in range(50)]


def start_worker(extra_env: dict[str, str]) -> subprocess.Popen:
    env = os.environ | {"DATABASE_URL": _test_database_url()} | extra_env
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery), "-A", "firebreak", "worker", "--pool", "solo", "-Q", "celery", "--without-heartbeat"]
    command += ["--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def broker_connections_reset() -> None:
    """Drop the app's pooled broker connections, so the next publish connects to the current broker URL."""
    kombu.pools.reset()  # the producer pools, shared process-wide, keyed by the old connection
    celery_app.pool.force_close_all()  # type: ignore[attr-defined]  # the stubs call it a ProducerPool
    celery_app._after_fork()  # type: ignore[attr-defined]  # forgets the pools, as a forked child does


def eventually(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def waiting_on_a_lock(dbname: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [dbname])
        return cur.fetchone()[0] > 0


def test_a_worker_killed_mid_batch_leaves_the_batch_to_the_next_worker(make_agent, make_spans):
    agent = make_agent("killed-mid-batch")
    settings_dict = connection.settings_dict
    # Hold the agent's row (NO KEY: ingest may still insert traces that point at it): the detector's pause
    # waits on it, so the worker is caught mid-batch.
    holder = psycopg.connect(
        host=settings_dict["HOST"] or "localhost",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        password=settings_dict.get("PASSWORD") or None,
        dbname=settings_dict["NAME"],
    )
    holder.execute("SELECT 1 FROM agents_agent WHERE id = %s FOR NO KEY UPDATE", [agent.pk])
    first = start_worker({"FIREBREAK_CELERY_VISIBILITY_TIMEOUT": "3"})
    try:
        trace_ingest(spans=make_spans(agent=agent.slug, steps=LOOP))  # commits; the task is queued
        wait_for(lambda: waiting_on_a_lock(settings_dict["NAME"]), 30, "the worker never reached the pause")
        stop(first, signal.SIGKILL)  # killed in the middle of the batch, its message unacknowledged
    finally:
        holder.rollback()
        holder.close()
    assert Agent.objects.get(pk=agent.pk).state == GateState.ACTIVE  # nothing of the batch was done
    second = start_worker({"FIREBREAK_CELERY_VISIBILITY_TIMEOUT": "3"})
    try:
        detected = eventually(lambda: Agent.objects.get(pk=agent.pk).state == GateState.PAUSED, 60)
    finally:
        log = stop(second)
    assert detected, f"the batch was never detected again:\n{log[-3000:]}"
    assert Alert.objects.filter(agent=agent, detector="action_repeat").count() == 1, log[-3000:]


def test_a_batch_committed_while_the_broker_is_down_is_detected_once_it_is_back(
    make_agent, make_spans, private_redis, settings
):
    agent = make_agent("broker-down")
    broker = celery_broker_url(private_redis.url)
    saved = celery_app.conf.broker_url
    settings.CELERY_BROKER_URL = celery_app.conf.broker_url = broker
    broker_connections_reset()
    try:
        private_redis.kill()
        trace_ingest(spans=make_spans(agent=agent.slug, steps=LOOP))  # commits; the broker refuses the task
        [backlog] = DetectionBacklog.objects.all()
        assert len(backlog.trace_pks) == 1
        private_redis.restart()
        broker_connections_reset()
        worker = start_worker({"REDIS_URL": private_redis.url})
        try:
            assert detection_backlog_drain_task() == 1  # what beat runs every 10 s
            assert not DetectionBacklog.objects.exists()
            wait_for(lambda: Agent.objects.get(pk=agent.pk).state == GateState.PAUSED, 30, "not detected")
        finally:
            stop(worker)
    finally:
        celery_app.conf.broker_url = saved
        broker_connections_reset()


def worker_backends(dbname: str) -> set[int]:
    with connection.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [dbname])
        return {row[0] for row in cur.fetchall()}


def test_the_worker_keeps_its_connection_and_reconnects_before_a_batch_when_postgresql_dropped_it(
    make_agent, make_spans
):
    """A backend a task cost more CPU than a detection batch: the worker keeps its connection between tasks.
    A connection PostgreSQL dropped (a restart, a terminated backend) is found before the next task runs, so
    that batch is detected on a new connection at once, not failed and retried."""
    first, second, third = (make_agent(f"conn-kept-{i}") for i in range(3))
    dbname = connection.settings_dict["NAME"]
    worker = start_worker({})
    try:
        trace_ingest(spans=make_spans(agent=first.slug, steps=LOOP))
        wait_for(lambda: Agent.objects.get(pk=first.pk).state == GateState.PAUSED, 60, "first batch not detected")
        kept = worker_backends(dbname)
        trace_ingest(spans=make_spans(agent=second.slug, steps=LOOP))
        wait_for(lambda: Agent.objects.get(pk=second.pk).state == GateState.PAUSED, 30, "second batch not detected")
        assert worker_backends(dbname) == kept and kept  # the same backend served both batches
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [sorted(kept)])
        wait_for(lambda: not worker_backends(dbname) & kept, 10, "the backend was not terminated")
        trace_ingest(spans=make_spans(agent=third.slug, steps=LOOP))
        detected = eventually(lambda: Agent.objects.get(pk=third.pk).state == GateState.PAUSED, 30)
    finally:
        log = stop(worker)
    assert detected, f"the batch after the dropped connection was never detected:\n{log[-3000:]}"
    assert "Retry in" not in log, log[-3000:]  # reconnected before the task, not after a failed attempt
