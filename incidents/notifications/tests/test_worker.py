"""The real path once: a kill commits, the broker carries the task, a real Celery worker sends it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.services import agent_kill, agent_resume
from conftest import TEST_REDIS_DB
from core.actors import Actor
from incidents.detection.tests.test_worker import _test_database_url
from incidents.models import Delivery
from incidents.notifications.tests.receivers import http_receiver

ROOT = Path(__file__).resolve().parents[3]


def _wait_sent(worker: subprocess.Popen[str], n: int, *, timeout: float, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Delivery.objects.filter(status="sent").count() < n:
        if worker.poll() is not None:
            pytest.fail(f"celery worker exited:\n{worker.stdout.read() if worker.stdout else ''}")
        time.sleep(poll)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_kill_notification_and_logs_it(settings, reference_data, make_agent, responder):
    agent = make_agent("refund-agent")
    with http_receiver() as receiver:
        url = f"json://127.0.0.1:{receiver.port}/hook"
        settings.FIREBREAK_NOTIFY_URLS = [url]
        env = os.environ | {
            "DATABASE_URL": _test_database_url(),
            "FIREBREAK_REDIS_DB": str(TEST_REDIS_DB),
            "FIREBREAK_NOTIFY_URLS": url,
        }
        if not settings.EMBEDDED_REDIS:
            env["REDIS_URL"] = settings.REDIS_URL
        celery = Path(sys.executable).with_name("celery")
        worker = subprocess.Popen(
            [str(celery), "-A", "firebreak", "worker", "--pool", "solo", "-Q", "celery", "--without-heartbeat",
             "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            agent_kill(agent=agent, actor=Actor.person(responder), reason="refunds issued twice")
            _wait_sent(worker, 1, timeout=45)
            # The worker is up: time one more, from the commit to the receiver's answer logged.
            started = time.monotonic()
            agent_resume(agent=agent, actor=Actor.person(responder), reason="fixed")
            _wait_sent(worker, 2, timeout=15, poll=0.01)
            print(f"resume committed → notification sent and logged: {(time.monotonic() - started) * 1000:.0f} ms")
        finally:
            worker.terminate()
            log = worker.communicate(timeout=20)[0]
    assert Delivery.objects.filter(event="gate.resume", status="sent").exists(), log[-3000:]
    delivery = Delivery.objects.filter(event="gate.kill").first()
    assert delivery is not None and delivery.status == "sent", log
    assert (delivery.target, delivery.attempts, delivery.agent_id) == ("default", 1, agent.pk)
    # Two deliveries, one task each: the receiver may hear them in either order.
    (payload,) = [b for b in receiver.bodies if "Killed" in b["title"]]
    assert payload["title"] == f"refund-agent — Killed by {responder.username}"
    assert "Why: refunds issued twice" in payload["message"]
