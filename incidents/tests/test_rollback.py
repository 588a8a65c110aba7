"""Rollback's last known good (issue 15): the versions of the newest traces in the last window without
alerts on the agent, pinned from the API and the agent page. Here because it reads traces and alerts."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents import containment
from agents.models import Agent, AuditEntry
from core import clock
from core.actors import Actor
from incidents.alerts.services import alert_raise
from incidents.models import FailureClass, Incident, TimelineEntry
from traces.models import Trace


@pytest.fixture
def agent(make_agent):
    return make_agent("helpdesk")


def api(url, *, user=None, body=None):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def test_last_known_good_skips_windows_with_alerts(agent, settings):
    from incidents.last_known_good import last_known_good

    settings.FIREBREAK_ROLLBACK_WINDOW_MINUTES = 60
    # Half past an hour: the trace of 5 minutes ago and the alert now share one aligned window, whenever it runs.
    now = timezone.now().replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
    for i, (ago, prompt) in enumerate([(timedelta(hours=5), "p1"), (timedelta(minutes=5), "p2")]):
        Trace.objects.create(
            agent=agent, trace_id=f"{i:032x}", started_at=now - ago, prompt_version=prompt, model_version="m1"
        )
    with clock.at(now):
        assert last_known_good(agent) == {"prompt_version": "p2", "model_version": "m1"}
        alert_raise(detector="loop", agent=agent, fingerprint="fp-lkg", title="looping")
        assert last_known_good(agent) == {"prompt_version": "p1", "model_version": "m1"}


def test_api_rollback_pins_the_last_known_good(agent, responder):
    Trace.objects.create(
        agent=agent, trace_id="a" * 32, started_at=timezone.now(), prompt_version="p7", model_version="m3"
    )
    assert api("/api/v1/agents/helpdesk/rollback", user=responder, body={}).status_code == 400  # reason required
    response = api("/api/v1/agents/helpdesk/rollback", user=responder, body={"reason": "p8 answers badly"})
    assert response.status_code == 200, response.content
    assert response.json()["pinned"] == {"prompt_version": "p7", "model_version": "m3"}
    assert api("/api/v1/agents/helpdesk/unpin", user=responder, body={}).json()["pinned"] is None


def test_one_click_rollback_then_unpin(agent, responder, make_client):
    Trace.objects.create(
        agent=agent, trace_id="b" * 32, started_at=timezone.now(), prompt_version="p9", model_version="m1"
    )
    client = make_client(responder)
    client.post("/agents/helpdesk/rollback", {"reason": "p10 is wrong"})
    assert Agent.objects.get(pk=agent.pk).pinned == {"prompt_version": "p9", "model_version": "m1"}
    assert "Pinned to prompt" in client.get("/agents/helpdesk/").content.decode()
    client.post("/agents/helpdesk/unpin")
    assert Agent.objects.get(pk=agent.pk).pinned is None


def test_the_degrade_rule_steps_the_agent_one_level_down(agent):
    from incidents.detection.base import Rule
    from incidents.detection.engine import alert_rule_apply

    alert, _ = alert_raise(detector="loop", agent=agent, fingerprint="fp-degrade", title="looping")
    assert alert_rule_apply(rule=Rule.DEGRADE, alert=alert) == ""
    agent.refresh_from_db()
    assert agent.level == "restricted" and agent.state == "active"
    entry = AuditEntry.objects.get(action="degrade")
    assert entry.actor_label.endswith("loop") and f"Alert #{alert.pk}" in entry.reason
    for _ in range(3):
        alert_rule_apply(rule=Rule.DEGRADE, alert=alert)
    assert "lowest level" in alert_rule_apply(rule=Rule.DEGRADE, alert=alert)
    assert Agent.objects.get(pk=agent.pk).level == "static"


def test_ladder_pin_and_block_changes_go_on_the_open_incidents_timeline(
    agent, responder, django_capture_on_commit_callbacks
):
    incident = Incident.objects.create(
        number=7, title="bad answers", severity="SEV2", failure_class=FailureClass.objects.first()
    )
    incident.agents.add(agent)
    actor = Actor.person(responder)
    with django_capture_on_commit_callbacks(execute=True):
        containment.agent_degrade(agent=agent, level="retrieval", actor=actor, reason="answers wrong")
    with django_capture_on_commit_callbacks(execute=True):
        containment.agent_rollback(agent=agent, prompt_version="p1", model_version="m1", actor=actor, reason="bad")
    with django_capture_on_commit_callbacks(execute=True):
        containment.agent_block(agent=agent, kind="tenant", value="acme", ttl_seconds=60, actor=actor, reason="abuse")
    with django_capture_on_commit_callbacks(execute=True):
        containment.agent_unblock(agent=agent, kind="tenant", value="acme", actor=actor)
    with django_capture_on_commit_callbacks(execute=True):
        containment.agent_unpin(agent=agent, actor=actor)
    bodies = [e.body for e in TimelineEntry.objects.filter(incident=incident, kind="gate").order_by("id")]
    assert len(bodies) == 5
    # each entry names what changed, not only the action: the level, the versions, the target
    assert "(full → retrieval)" in bodies[0] and "answers wrong" in bodies[0]
    assert "(pinned to prompt p1, model m1)" in bodies[1]
    until = (timezone.now() + timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M")
    assert "(tenant acme until " in bodies[2] and until[:13] in bodies[2]
    assert "(tenant acme)" in bodies[3]
    assert "(was pinned to prompt p1, model m1)" in bodies[4]
    # and the agent page's audit history says the same
    page = Client()
    page.force_login(responder)
    html = page.get("/agents/helpdesk/").content.decode()
    assert "full → retrieval" in html and "pinned to prompt p1, model m1" in html
