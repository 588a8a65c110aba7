"""Notifications go out through Apprise after commit; a failing target makes the task retry, never the responder."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from celery.exceptions import Retry

from core.actors import Actor
from incidents.models import Incident
from incidents.notifications.services import NotificationFailed, notification_send
from incidents.notifications.tasks import incident_notify_task
from incidents.services import incident_severity_set, incident_status_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """A local HTTP server that records every JSON body posted to it."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_port}/", received
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_callbacks(callbacks):
    for callback in callbacks:
        callback()


def test_declaring_sends_the_notification_after_commit(
    settings, receiver, make_incident, django_capture_on_commit_callbacks, monkeypatch
):
    url, received = receiver
    settings.FIREBREAK_NOTIFY_URLS = [url]
    settings.FIREBREAK_BASE_URL = "https://firebreak.example"
    sent = []
    monkeypatch.setattr(incident_notify_task, "delay", lambda *args: sent.append(incident_notify_task.apply(args)))
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(title="Refunds looping", severity="SEV1")
    assert len(sent) == 1
    assert len(received) == 1
    message = received[0]
    assert message["title"] == f"INC-{incident.number} [SEV1] Refunds looping — declared"
    assert f"https://firebreak.example/incidents/{incident.number}/" in message["message"]


def test_severity_change_contained_and_resolved_notify(
    settings, make_incident, responder, django_capture_on_commit_callbacks, monkeypatch
):
    settings.FIREBREAK_NOTIFY_URLS = ["json://127.0.0.1:9/"]
    events = []
    monkeypatch.setattr(incident_notify_task, "delay", lambda pk, event, detail="": events.append((event, detail)))
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV3")
        incident_severity_set(incident=incident, severity="SEV2", actor=Actor.person(responder))
        incident_status_set(incident=incident, status="investigating", actor=Actor.person(responder))
        incident_status_set(incident=incident, status="contained", actor=Actor.person(responder))
        incident_status_set(incident=incident, status="resolved", actor=Actor.person(responder))
    assert events == [("declared", ""), ("severity", "was SEV3"), ("contained", ""), ("resolved", "")]


def test_no_urls_configured_sends_nothing(settings, make_incident, django_capture_on_commit_callbacks, monkeypatch):
    settings.FIREBREAK_NOTIFY_URLS = []
    queued = []
    monkeypatch.setattr(incident_notify_task, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident()
    assert queued == []
    assert notification_send(incident_id=incident.pk, event="declared") is False


def test_a_failing_target_raises_so_the_task_retries_and_declaring_still_succeeds(
    settings, make_incident, django_capture_on_commit_callbacks, monkeypatch
):
    settings.FIREBREAK_NOTIFY_URLS = [f"json://127.0.0.1:{closed_port()}/"]
    results = []
    monkeypatch.setattr(incident_notify_task, "delay", lambda *args: results.append(incident_notify_task.apply(args)))
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident()
    assert Incident.objects.filter(pk=incident.pk).exists()
    with pytest.raises(NotificationFailed):
        notification_send(incident_id=incident.pk, event="declared")
    # Celery's eager apply records the retry it scheduled.
    assert len(results) == 1
    assert isinstance(results[0].result, Retry | NotificationFailed)


def test_task_is_configured_to_retry_with_backoff():
    assert incident_notify_task.autoretry_for == (NotificationFailed,)
    assert incident_notify_task.max_retries == 5
    assert incident_notify_task.retry_backoff


def test_a_broker_that_is_down_never_fails_the_declaration(
    settings, make_incident, django_capture_on_commit_callbacks, monkeypatch
):
    settings.FIREBREAK_NOTIFY_URLS = ["json://127.0.0.1:9/"]

    def broken(*args):
        raise ConnectionError("broker down")

    monkeypatch.setattr(incident_notify_task, "delay", broken)
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident()
    assert Incident.objects.filter(pk=incident.pk).exists()
