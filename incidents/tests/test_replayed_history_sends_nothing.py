"""History replayed at a past time (the demo's months of incidents, ``core.clock.at``) pages nobody and posts
nothing in chat, even with PagerDuty, Slack and notification routes configured; the same writes at the
real present do go out."""

from datetime import UTC, datetime

import pytest

from core import clock
from core.actors import Actor
from incidents import services
from incidents.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def everything_configured(settings, monkeypatch):
    settings.FIREBREAK_PAGERDUTY_ROUTING_KEY = "R0UTINGKEY0000000000000000000000"
    settings.FIREBREAK_PAGERDUTY_EVENTS_URL = "http://127.0.0.1:9/v2/enqueue"
    settings.FIREBREAK_SLACK_BOT_TOKEN = "xoxb-test"
    settings.FIREBREAK_SLACK_API_URL = "http://127.0.0.1:9/api/"
    settings.FIREBREAK_NOTIFY_URLS = ["json://127.0.0.1:9/"]
    queued: list[str] = []
    monkeypatch.setattr("celery.app.task.Task.delay", lambda self, *a, **k: queued.append(self.name))
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda self, *a, **k: queued.append(self.name))
    return queued


def test_a_sev1_declared_in_the_past_sends_nothing_and_one_declared_now_does(
    responder, everything_configured, django_capture_on_commit_callbacks
):
    with clock.at(datetime(2026, 8, 1, tzinfo=UTC)), django_capture_on_commit_callbacks(execute=True):
        services.incident_declare(title="Past loop", severity="SEV1", actor=Actor.person(responder))
    assert everything_configured == [] and not Delivery.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        services.incident_declare(title="Loop now", severity="SEV1", actor=Actor.person(responder))
    assert everything_configured  # paging, chat and notifications are queued
    assert Delivery.objects.filter(channel="pagerduty").exists()
