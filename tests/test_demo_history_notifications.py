"""The demo history replays months of incidents through the real services (kills, declarations, status
changes, post-mortems) at their own past times: none of it is news, nothing may go out."""

from datetime import UTC, datetime

import pytest

from agents.services import agent_register
from demo.fleet import AGENTS, DEMO_ACTOR
from demo.fleet.history import history_load
from incidents.models import Delivery, Incident
from incidents.notifications import tasks


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_loading_the_demo_history_queues_no_notification(settings, reference_data, monkeypatch):
    settings.FIREBREAK_NOTIFY_URLS = ["json://127.0.0.1:9/hook"]  # as if an operator had set a route
    queued = []
    for task in (tasks.alert_notify_task, tasks.incident_notify_task, tasks.gate_notify_task):
        monkeypatch.setattr(task, "delay", lambda *args, _name=task.name: queued.append((_name, args)))
    for spec in AGENTS:
        agent_register(actor=DEMO_ACTOR, **spec.register_kwargs())
    summary = history_load(seed=11, anchor=datetime(2025, 6, 2, 9, 30, tzinfo=UTC))
    assert summary.incidents > 5 and summary.audit_rows > 0  # it did replay kills and incidents
    assert Incident.objects.exists()
    assert queued == []
    assert not Delivery.objects.exists()
