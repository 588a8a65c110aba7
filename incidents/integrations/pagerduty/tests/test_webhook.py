"""PagerDuty → Firebreak: signed v3 webhooks acknowledge or resolve what they name, once, and never
echo back to PagerDuty."""

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest

from core.actors import Actor
from incidents.models import Alert, Delivery, TimelineEntry
from incidents.services import incident_status_set

pytestmark = pytest.mark.django_db

URL = "/api/v1/integrations/pagerduty/webhook"
SECRET = "whsec-test-0123456789abcdef"
OLD_SECRET = "whsec-old-fedcba9876543210"

# The documented v3 payload (developer.pagerduty.com, Webhooks v3 overview: the incident event data),
# as PagerDuty sends it for incident.acknowledged; incident_key carries the Events API dedup_key.
SAMPLE: dict[str, Any] = {
    "event": {
        "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
        "event_type": "incident.acknowledged",
        "resource_type": "incident",
        "occurred_at": "2020-10-02T18:45:22.169Z",
        "agent": {
            "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
            "id": "PLH1HKV",
            "self": "https://api.pagerduty.com/users/PLH1HKV",
            "summary": "Tenex Engineer",
            "type": "user_reference",
        },
        "client": {"name": "PagerDuty"},
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": "acknowledged",
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2020-04-09T15:16:27Z",
            "title": "A little bump in the road",
            "service": {
                "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                "id": "PF9KMXH",
                "self": "https://api.pagerduty.com/services/PF9KMXH",
                "summary": "API Service",
                "type": "service_reference",
            },
            "assignees": [
                {
                    "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                    "id": "PTUXL6G",
                    "self": "https://api.pagerduty.com/users/PTUXL6G",
                    "summary": "User 123",
                    "type": "user_reference",
                }
            ],
            "escalation_policy": {
                "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
                "id": "PUS0KTE",
                "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
                "summary": "Default",
                "type": "escalation_policy_reference",
            },
            "teams": [],
            "priority": None,
            "urgency": "high",
            "conference_bridge": None,
            "resolve_reason": None,
        },
    }
}


def payload(event_type: str, incident_key: str) -> bytes:
    body = copy.deepcopy(SAMPLE)
    body["event"]["event_type"] = event_type
    body["event"]["data"]["incident_key"] = incident_key
    return json.dumps(body, separators=(",", ":")).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def post(client, settings):
    settings.FIREBREAK_PAGERDUTY_WEBHOOK_SECRET = SECRET

    def send(body: bytes, signature: str | None = None):
        headers = {} if signature is None else {"HTTP_X_PAGERDUTY_SIGNATURE": signature}
        return client.post(URL, data=body, content_type="application/json", **headers)

    return send


def test_a_signed_acknowledge_acknowledges_the_alert_as_pagerduty(post, make_alert):
    alert = make_alert()
    body = payload("incident.acknowledged", f"firebreak-alert-{alert.pk}")
    response = post(body, sign(body))
    assert response.status_code == 202
    assert response.json() == {"status": f"acknowledged alert {alert.pk}"}
    alert.refresh_from_db()
    assert (alert.status, alert.handled_by) == ("acknowledged", "pagerduty")


def test_a_signed_resolve_resolves_the_incident(post, make_incident):
    incident = make_incident(severity="SEV1")
    body = payload("incident.resolved", f"firebreak-incident-{incident.number}")
    assert post(body, sign(body)).status_code == 202
    incident.refresh_from_db()
    assert incident.status == "resolved"
    entry = TimelineEntry.objects.filter(incident=incident, kind="status").latest("pk")
    assert entry.actor_label == "pagerduty" and "incident.resolved" in entry.body


@pytest.mark.parametrize(
    "signature",
    [None, "", sign(b"something else"), sign(b"x", OLD_SECRET), "v0=" + "0" * 64, "sha256=abc"],
    ids=["missing", "empty", "other-body", "wrong-secret", "other-version", "garbage"],
)
def test_a_forged_or_unsigned_webhook_is_refused_and_nothing_changes(post, make_alert, signature):
    alert = make_alert()
    body = payload("incident.resolved", f"firebreak-alert-{alert.pk}")
    if signature == sign(b"x", OLD_SECRET):
        signature = sign(body, OLD_SECRET)  # signed, but with a secret Firebreak does not hold
    response = post(body, signature)
    assert response.status_code == 401
    assert "X-PagerDuty-Signature" in response.json()["error"]
    alert.refresh_from_db()
    assert alert.status == "open"


def test_a_header_with_two_signatures_during_rotation_is_accepted(post, make_alert):
    alert = make_alert()
    body = payload("incident.resolved", f"firebreak-alert-{alert.pk}")
    response = post(body, f"{sign(body, OLD_SECRET)},{sign(body)}")
    assert response.status_code == 202
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_the_same_webhook_twice_changes_nothing_the_second_time(post, make_incident):
    incident = make_incident(severity="SEV2")
    body = payload("incident.acknowledged", f"firebreak-incident-{incident.number}")
    assert post(body, sign(body)).json()["status"].startswith("acknowledged incident")
    incident.refresh_from_db()
    assert incident.status == "investigating"
    entries = TimelineEntry.objects.filter(incident=incident).count()
    again = post(body, sign(body))
    assert again.status_code == 202
    assert again.json()["status"].startswith("unchanged")
    assert TimelineEntry.objects.filter(incident=incident).count() == entries


@pytest.mark.parametrize(
    ("event_type", "key", "says"),
    [
        ("incident.acknowledged", "d3640fbd41094207a1c11e58e46b1662", "not a Firebreak dedup_key"),
        ("incident.acknowledged", "firebreak-alert-999999", "no alert 999999"),
        ("incident.acknowledged", "firebreak-incident-999999", "no incident 999999"),
        ("incident.annotated", "firebreak-alert-1", "not acted on"),
        ("incident.priority_updated", "firebreak-alert-1", "not acted on"),
    ],
)
def test_unknown_keys_and_events_are_accepted_and_ignored(post, make_alert, event_type, key, says):
    make_alert()
    body = payload(event_type, key)
    response = post(body, sign(body))
    assert response.status_code == 202  # PagerDuty retries anything else
    assert response.json()["status"].startswith("ignored") and says in response.json()["status"]
    assert not Alert.objects.exclude(status="open").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "event"),
        (b'{"event": {"id": "x"}}', "event.event_type"),
        (b'{"event": {"event_type": "incident.resolved", "data": []}}', "event.data"),
    ],
)
def test_a_signed_body_that_is_not_a_v3_webhook_is_a_400_naming_the_field(post, body, field):
    response = post(body, sign(body))
    assert response.status_code == 400
    assert field in response.json()["detail"]


def test_without_a_secret_the_endpoint_says_webhooks_are_not_configured(post, settings, make_alert):
    settings.FIREBREAK_PAGERDUTY_WEBHOOK_SECRET = ""
    alert = make_alert()
    body = payload("incident.resolved", f"firebreak-alert-{alert.pk}")
    response = post(body, sign(body))
    assert response.status_code == 404
    assert "not configured" in response.json()["error"]
    alert.refresh_from_db()
    assert alert.status == "open"


def test_changes_from_pagerduty_are_not_echoed_back(post, pagerduty, make_incident, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    key = f"firebreak-incident-{incident.number}"
    assert pagerduty.actions() == [("trigger", key)]
    for event_type in ("incident.acknowledged", "incident.resolved"):
        body = payload(event_type, key)
        with django_capture_on_commit_callbacks(execute=True):
            assert post(body, sign(body)).status_code == 202
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert pagerduty.actions() == [("trigger", key)]  # PagerDuty already knows: nothing sent back
    assert Delivery.objects.filter(channel="pagerduty").count() == 1


def test_a_person_acting_after_pagerdutys_acknowledge_still_resolves_the_page(
    post, pagerduty, make_incident, responder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident(severity="SEV1")
    key = f"firebreak-incident-{incident.number}"
    body = payload("incident.acknowledged", key)
    with django_capture_on_commit_callbacks(execute=True):
        post(body, sign(body))
    with django_capture_on_commit_callbacks(execute=True):
        incident_status_set(incident=incident, status="resolved", actor=Actor.person(responder))
    assert pagerduty.actions() == [("trigger", key), ("resolve", key)]
