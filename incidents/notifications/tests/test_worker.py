"""The real path once: a kill commits, the broker carries the task, a real Celery worker sends it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.services import agent_kill
from conftest import TEST_REDIS_DB
from core.actors import Actor
from incidents.detection.tests.test_worker import _test_database_url
from incidents.models import Delivery
from incidents.notifications.tests.receivers import http_receiver

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_kill_notification_and_logs_it(settings, make_agent, responder):
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
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline and not Delivery.objects.filter(status="sent").exists():
                if worker.poll() is not None:
                    pytest.fail(f"celery worker exited:\n{worker.stdout.read() if worker.stdout else ''}")
                time.sleep(0.2)
        finally:
            worker.terminate()
            log = worker.communicate(timeout=20)[0]
    delivery = Delivery.objects.filter(event="gate.kill").first()
    assert delivery is not None and delivery.status == "sent", log
    assert (delivery.target, delivery.attempts, delivery.agent_id) == ("default", 1, agent.pk)
    [payload] = receiver.bodies
    assert payload["title"] == f"refund-agent — Killed by {responder.username}"
    assert "Why: refunds issued twice" in payload["message"]
