"""Nobody rewrites the record: audit rows and timeline entries are append-only (in PostgreSQL itself and in
the admin), incidents are never deleted, and gate settings edited in the admin go through the gate's door."""

import time

import pytest
from django.db import DatabaseError, transaction
from firebreak_sdk import Gate

from agents import services
from agents.gate import KEY, gate_publish
from agents.keys.redis_users import redis_url_for, redis_username
from agents.keys.services import api_key_create
from agents.models import Agent, AuditEntry, FleetGate
from core.actors import Actor
from incidents.models import Incident, TimelineEntry
from incidents.services import timeline_note_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(admin_user):
    """The break-glass admin: the Django admin is for superusers."""
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    return admin_user


@pytest.fixture
def kill_row(make_agent, admin_user):
    return services.agent_kill(agent=make_agent("audit-agent"), actor=Actor.person(admin_user))


def refused(fn) -> bool:
    try:
        with transaction.atomic():
            fn()
    except DatabaseError as exc:
        assert "append-only" in str(exc)
        return True
    return False


def test_audit_rows_cannot_be_edited_or_deleted_even_with_sql(kill_row):
    assert refused(lambda: AuditEntry.objects.filter(pk=kill_row.pk).update(reason="it was fine"))
    assert refused(lambda: AuditEntry.objects.filter(pk=kill_row.pk).update(actor_label="someone else"))
    kill_row.reason = "edited in place"
    assert refused(kill_row.save)
    assert refused(lambda: AuditEntry.objects.filter(pk=kill_row.pk).delete())
    assert AuditEntry.objects.get(pk=kill_row.pk).reason == ""


def test_deleting_a_user_keeps_their_audit_rows_and_their_name(kill_row, admin_user):
    name = admin_user.username
    admin_user.delete()
    row = AuditEntry.objects.get(pk=kill_row.pk)
    assert row.actor is None and row.actor_label == name


def test_timeline_entries_cannot_be_edited_or_deleted_and_incidents_stay(make_incident, responder):
    incident = make_incident()
    note = timeline_note_add(incident=incident, body="It looped.", actor=Actor.person(responder))
    assert refused(lambda: TimelineEntry.objects.filter(pk=note.pk).update(body="Nothing happened."))
    assert refused(lambda: TimelineEntry.objects.filter(pk=note.pk).delete())
    assert refused(lambda: Incident.objects.filter(pk=incident.pk).delete())  # its timeline would go with it
    assert TimelineEntry.objects.get(pk=note.pk).body == "It looped."


def test_the_admin_offers_no_way_to_change_the_record(kill_row, make_incident, superuser, make_client):
    client = make_client(superuser)
    incident = make_incident()
    entry = incident.timeline.first()
    for url in (
        f"/admin/agents/auditentry/{kill_row.pk}/delete/",
        f"/admin/incidents/timelineentry/{entry.pk}/delete/",
        f"/admin/incidents/incident/{incident.pk}/delete/",
        "/admin/incidents/timelineentry/add/",
        "/admin/agents/apikey/add/",
    ):
        assert client.post(url, {"post": "yes"}).status_code == 403, url
    client.post(f"/admin/incidents/timelineentry/{entry.pk}/change/", {"body": "rewritten", "kind": "note"})
    assert TimelineEntry.objects.get(pk=entry.pk).body == entry.body


def test_an_admin_edit_of_gate_settings_is_audited_versioned_and_published(
    make_agent, superuser, make_client, redis_client, django_capture_on_commit_callbacks
):
    agent = make_agent("audit-agent", session_cost_cap=5)
    gate_publish([agent], FleetGate.load())
    version = Agent.objects.get(pk=agent.pk).gate_version
    key, raw = api_key_create(agent=agent, scopes=["gate"], redis=True)
    running = Gate(agent.slug, redis_url=redis_url_for(key, raw), max_staleness=60)  # only a push can update it
    running.check()
    deadline = time.monotonic() + 5
    while not running.subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    form = {
        "slug": agent.slug,
        "name": "Refund agent",
        "description": "",
        "owner": "payments",
        "environment": "production",
        "allowed_tools": "search,lookup_order,send_email",
        "high_risk_tools": "",
        "model_version": "",
        "prompt_version": "",
        "fallback_message": "Refunds are paused; a person will email you.",
        "session_cost_cap": "2.50",
        "daily_cost_cap": "",
        "session_token_cap": "",
        "session_step_cap": "",
        "canary_webhook_url": "",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = make_client(superuser).post(f"/admin/agents/agent/{agent.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert agent.gate_version == version + 1 and agent.owner == "payments"
    row = AuditEntry.objects.filter(agent=agent, action="settings").get()
    assert (row.actor, row.before["session_cost_cap"], row.after["session_cost_cap"]) == (superuser, "5.0000", "2.50")
    published = redis_client.get(KEY.format(slug=agent.slug)).decode()
    assert "Refunds are paused" in published and '"session_cost_cap":2.5' in published
    deadline = time.monotonic() + 5
    while running.fallback_response() != "Refunds are paused; a person will email you." and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running.state["budget"]["session_cost_cap"] == 2.5  # the running SDK has the new cap
    running.close()
    redis_client.execute_command("ACL", "DELUSER", redis_username(key))
