"""Pages go out through the Events API v2 and follow the incident or alert: trigger, acknowledge,
resolve with one dedup_key; retried on 429/5xx/no answer, every attempt on one delivery row."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from core import clock
from core.actors import Actor
from incidents.alerts.services import alert_acknowledge, alert_resolve, detector_setting_save
from incidents.detection.base import Finding
from incidents.detection.engine import findings_handle
from incidents.integrations.pagerduty.events import Trigger, event_body
from incidents.integrations.pagerduty.sending import PagingRetry, pagerduty_deliver
from incidents.integrations.pagerduty.services import page_enqueue
from incidents.integrations.pagerduty.tasks import pagerduty_requeue_task, pagerduty_send_task
from incidents.integrations.pagerduty.tests.conftest import ROUTING_KEY
from incidents.integrations.pagerduty.tests.fake_pagerduty import schema_errors
from incidents.models import Delivery
from incidents.notifications.deliveries import delivery_list
from incidents.services import (
    incident_command_take,
    incident_severity_set,
    incident_status_set,
)

pytestmark = pytest.mark.django_db


def _secretless():
    """Every delivery row as text: the routing key must appear nowhere."""
    rows = Delivery.objects.values("target", "event", "detail", "error")
    return json.dumps(list(rows), default=str)


def test_a_sev1_is_triggered_acknowledged_and_resolved_with_one_dedup_key(
    pagerduty, make_incident, make_user, responder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(title="Refund agent wiping orders", severity="SEV1")
    key = f"firebreak-incident-{incident.number}"
    assert pagerduty.actions() == [("trigger", key)]
    trigger = pagerduty.accepted[0]
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == f"INC-{incident.number} [SEV1] Refund agent wiping orders"
    assert trigger["links"][0]["href"] == f"https://firebreak.example/incidents/{incident.number}/"
    assert trigger["client"] == "Firebreak"

    other = make_user(username="oncall")
    with django_capture_on_commit_callbacks(execute=True):
        incident_command_take(incident=incident, actor=Actor.person(other))
    with django_capture_on_commit_callbacks(execute=True):
        incident_status_set(incident=incident, status="contained", actor=Actor.person(responder))
    with django_capture_on_commit_callbacks(execute=True):
        incident_status_set(incident=incident, status="resolved", actor=Actor.person(responder))

    # Taking command acknowledges; contained adds nothing (already acknowledged); resolved resolves.
    assert pagerduty.actions() == [("trigger", key), ("acknowledge", key), ("resolve", key)]
    assert pagerduty.invalid == []
    rows = list(delivery_list(incident=incident, channels=["pagerduty"]))
    assert [(r.detail["event_action"], r.status, r.attempts) for r in reversed(rows)] == [
        ("trigger", "sent", 1),
        ("acknowledge", "sent", 1),
        ("resolve", "sent", 1),
    ]
    assert {r.target for r in rows} == {"events API"}
    assert ROUTING_KEY not in _secretless()


def test_leaving_declared_acknowledges_and_closing_after_resolve_sends_nothing_more(
    pagerduty, make_incident, responder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV2")
    with django_capture_on_commit_callbacks(execute=True):
        incident_status_set(incident=incident, status="investigating", actor=Actor.person(responder))
    key = f"firebreak-incident-{incident.number}"
    assert pagerduty.actions() == [("trigger", key), ("acknowledge", key)]
    assert pagerduty.accepted[0]["payload"]["severity"] == "error"


def test_a_sev3_is_paged_only_once_raised_to_sev2(
    pagerduty, make_incident, responder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV3")
    with django_capture_on_commit_callbacks(execute=True):
        incident_status_set(incident=incident, status="investigating", actor=Actor.person(responder))
    assert pagerduty.accepted == []  # nothing paged, so nothing to acknowledge
    with django_capture_on_commit_callbacks(execute=True):
        incident_severity_set(incident=incident, severity="SEV2", actor=Actor.person(responder))
    assert pagerduty.actions() == [("trigger", f"firebreak-incident-{incident.number}")]
    with django_capture_on_commit_callbacks(execute=True):
        incident_severity_set(incident=incident, severity="SEV3", actor=Actor.person(responder))
    assert len(pagerduty.accepted) == 1  # lowering is not a page


def test_without_a_routing_key_nothing_is_recorded_or_sent(
    pagerduty, settings, make_incident, django_capture_on_commit_callbacks
):
    settings.FIREBREAK_PAGERDUTY_ROUTING_KEY = ""
    with django_capture_on_commit_callbacks(execute=True):
        make_incident(severity="SEV1")
    assert pagerduty.requests == 0
    assert not Delivery.objects.filter(channel="pagerduty").exists()


def _set_rule(detector, rule, admin_user):
    detector_setting_save(detector=detector, enabled=True, thresholds={}, rule=rule, actor=Actor.person(admin_user))


def _finding(agent, key="orders-1"):
    return Finding(detector="action_repeat", agent_id=agent.pk, key=key, title="lookup_order repeated 3 times",
                   severity="SEV2", failure_class="runaway-loop")  # fmt: skip


def test_the_page_rule_pages_the_alert_and_follows_it(
    pagerduty, traced_agent, admin_user, responder, django_capture_on_commit_callbacks
):
    _set_rule("action_repeat", "page", admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        [alert] = findings_handle([_finding(traced_agent)])
    key = f"firebreak-alert-{alert.pk}"
    assert pagerduty.actions() == [("trigger", key)]
    payload = pagerduty.accepted[0]["payload"]
    assert payload["severity"] == "error"
    assert payload["source"] == "firebreak/refund-bot"
    assert payload["class"] == "action_repeat"
    traced_agent.refresh_from_db()
    assert traced_agent.state == "active"  # page is notify + page: the agent is not paused

    with django_capture_on_commit_callbacks(execute=True):
        alert_acknowledge(alert=alert, actor=Actor.person(responder))
    with django_capture_on_commit_callbacks(execute=True):
        alert_resolve(alert=alert, actor=Actor.person(responder))
    with django_capture_on_commit_callbacks(execute=True):
        findings_handle([_finding(traced_agent)])  # the same finding again: the alert reopens
    assert pagerduty.actions() == [("trigger", key), ("acknowledge", key), ("resolve", key), ("trigger", key)]
    assert pagerduty.invalid == []


def test_the_notify_rule_does_not_page(pagerduty, traced_agent, admin_user, responder,
                                       django_capture_on_commit_callbacks):  # fmt: skip
    _set_rule("action_repeat", "notify", admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        [alert] = findings_handle([_finding(traced_agent)])
    with django_capture_on_commit_callbacks(execute=True):
        alert_acknowledge(alert=alert, actor=Actor.person(responder))
    assert pagerduty.requests == 0
    assert not delivery_list(alert=alert).exists()


def test_429_and_500_are_retried_honouring_retry_after_until_accepted(
    pagerduty, make_incident, django_capture_on_commit_callbacks
):
    pagerduty.answers = [(500, {}), (429, {"Retry-After": "1"})]
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    assert pagerduty.requests == 3
    [row] = delivery_list(incident=incident, channels=["pagerduty"])
    assert (row.status, row.attempts, row.error) == ("sent", 3, "")


def test_retries_end_in_failure_saying_why(pagerduty, make_incident, django_capture_on_commit_callbacks):
    pagerduty.answers = [(503, {})] * 10
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    assert pagerduty.requests == 4  # FIREBREAK_PAGERDUTY_MAX_ATTEMPTS
    [row] = delivery_list(incident=incident, channels=["pagerduty"])
    assert row.status == "failed"
    assert row.attempts == 4
    assert row.error.startswith("Gave up after 4 attempts: PagerDuty answered 503")


def test_a_refused_event_fails_at_once_with_pagerdutys_reason(
    pagerduty, make_incident, django_capture_on_commit_callbacks
):
    pagerduty.answers = [(400, {})]
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    assert pagerduty.requests == 1  # the same body again cannot help
    [row] = delivery_list(incident=incident, channels=["pagerduty"])
    assert (row.status, row.attempts) == ("failed", 1)
    assert "400" in row.error and "Event object is invalid" in row.error


def test_no_answer_is_retried_then_failed(pagerduty, settings, make_incident, django_capture_on_commit_callbacks):
    settings.FIREBREAK_PAGERDUTY_EVENTS_URL = "http://127.0.0.1:9/v2/enqueue"  # discard port: refused
    settings.FIREBREAK_PAGERDUTY_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    [row] = delivery_list(incident=incident, channels=["pagerduty"])
    assert (row.status, row.attempts) == ("failed", 2)
    assert "no answer from PagerDuty" in row.error


def test_an_acknowledge_is_not_sent_when_the_trigger_failed_for_good(
    pagerduty, make_incident, responder, django_capture_on_commit_callbacks
):
    pagerduty.answers = [(400, {})]
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    with django_capture_on_commit_callbacks(execute=True):
        incident_status_set(incident=incident, status="investigating", actor=Actor.person(responder))
    assert pagerduty.requests == 1


def test_the_detector_settings_page_says_whether_paging_is_on(settings, make_client, admin_user):
    client = make_client(admin_user)
    settings.FIREBREAK_PAGERDUTY_ROUTING_KEY = ""
    page = client.get("/incidents/alerts/settings/").content.decode()
    assert "Paging is off: FIREBREAK_PAGERDUTY_ROUTING_KEY is not set" in page
    settings.FIREBREAK_PAGERDUTY_ROUTING_KEY = ROUTING_KEY
    page = client.get("/incidents/alerts/settings/").content.decode()
    assert "Paging is on" in page
    assert ROUTING_KEY not in page


def test_a_task_delivered_twice_sends_once(pagerduty, make_incident, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    [row] = delivery_list(incident=incident, channels=["pagerduty"])
    pagerduty_send_task.apply((row.pk,))  # the broker redelivers after a worker was lost
    assert pagerduty.requests == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_an_acknowledge_waits_for_its_trigger_still_on_its_way(
    pagerduty, monkeypatch, make_incident, responder, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(pagerduty_send_task, "delay", queued.append)  # hold the sends: the worker is busy
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    with django_capture_on_commit_callbacks(execute=True):
        incident_status_set(incident=incident, status="investigating", actor=Actor.person(responder))
    trigger_id, ack_id = queued
    with pytest.raises(PagingRetry, match="waiting for an earlier event"):
        pagerduty_deliver(delivery_id=ack_id, last_attempt=False)
    assert pagerduty.requests == 0
    pagerduty_deliver(delivery_id=trigger_id, last_attempt=False)
    pagerduty_deliver(delivery_id=ack_id, last_attempt=False)
    key = f"firebreak-incident-{incident.number}"
    assert pagerduty.actions() == [("trigger", key), ("acknowledge", key)]


def test_a_long_summary_is_cut_to_pagerdutys_limit():
    trigger = Trigger(summary="x" * 5000, source="firebreak/a", severity="critical", timestamp=timezone.now())
    body = event_body(routing_key=ROUTING_KEY, event_action="trigger", dedup_key="k", trigger=trigger)
    assert len(body["payload"]["summary"]) == 1024
    assert schema_errors(body) == []
    with pytest.raises(ValueError, match="severity"):
        event_body(routing_key=ROUTING_KEY, event_action="trigger", dedup_key="k",
                   trigger=Trigger(summary="s", source="s", severity="SEV1", timestamp=timezone.now()))  # fmt: skip


def test_a_page_never_queued_is_queued_again_by_beat(pagerduty, make_incident, django_capture_on_commit_callbacks):
    incident = make_incident(severity="SEV1")  # its signal's callbacks are never run here
    with django_capture_on_commit_callbacks(execute=False):  # recorded, but its task never reached the broker
        row = page_enqueue(event_action="trigger", dedup_key=f"firebreak-incident-{incident.number}",
                           event="incident.declared", reason="SEV1 declared", incident=incident)  # fmt: skip
    assert row is not None and row.status == "pending"
    assert pagerduty_requeue_task.apply().get() == 0  # a minute later it may still be on its way: left alone
    with clock.at(timezone.now() + timedelta(minutes=3)):
        assert pagerduty_requeue_task.apply().get() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)
    assert pagerduty.actions() == [("trigger", f"firebreak-incident-{incident.number}")]
