"""What changed: the change log over the API (roles, 400, 409 during a freeze), ingest recording each
new prompt and model version once with its first trace, and the freeze refusing config edits but
never containment."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from agents import fleet
from agents.change_log import ChangeFrozen
from agents.keys.services import api_key_create
from agents.models import AuditAction, AuditEntry, ChangeEvent, GateState
from agents.services import agent_budget_caps_set, agent_gate_settings_set
from core.actors import Actor

URL = "/api/v1/agents/refund-agent/changes"


@pytest.fixture
def agent(make_agent):
    return make_agent("refund-agent")


def post(url, body, *, user=None, key=None):
    client = Client()
    headers = {}
    if user is not None:
        client.force_login(user)
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def freeze_on(user, reason="INC-12 refunds wrong"):
    fleet.change_freeze(actor=Actor.person(user), on=True, reason=reason)


def test_a_pipeline_records_a_change_with_a_responders_key(agent, responder):
    key = api_key_create(user=responder, scopes=["api"])[1]
    r = post(URL, {"kind": "prompt", "version": "v7", "description": "shorter refund policy"}, key=key)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["kind"] == "prompt" and body["version"] == "v7" and body["source"] == "api"
    assert body["actor"] == responder.username and body["first_trace_url"] is None
    event = ChangeEvent.objects.get(agent=agent)
    assert event.description == "shorter refund policy" and not event.during_freeze
    audit = AuditEntry.objects.get(agent=agent, action=AuditAction.CHANGE_RECORD)
    assert audit.after == {"kind": "prompt", "version": "v7", "source": "api"}
    # the same version twice is a conflict, not a second row
    again = post(URL, {"kind": "prompt", "version": "v7"}, key=key)
    assert again.status_code == 409 and ChangeEvent.objects.count() == 1


def test_roles_and_keys(agent, viewer, admin_user):
    assert post(URL, {"kind": "model", "version": "gpt-4o"}, user=viewer).status_code == 403
    agent_key = api_key_create(agent=agent, scopes=["ingest", "gate"])[1]
    assert post(URL, {"kind": "model", "version": "gpt-4o"}, key=agent_key).status_code == 403
    assert not ChangeEvent.objects.exists()
    assert post(URL, {"kind": "model", "version": "gpt-4o"}, user=admin_user).status_code == 201
    assert Client().get(URL).status_code in (401, 403)
    reader = Client()
    reader.force_login(viewer)
    listed = reader.get(URL).json()
    assert [c["version"] for c in listed] == ["gpt-4o"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "v1"}, "kind"),
        ({"kind": "weather", "version": "v1"}, "kind"),
        ({"kind": "prompt"}, "version"),
        ({"kind": "prompt", "version": ""}, "version"),
        ({"kind": "prompt", "version": "v" * 201}, "version"),
        ({"kind": "prompt", "version": "v1", "description": "x" * 2001}, "description"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(agent, responder, body, field):
    r = post(URL, body, user=responder)
    assert r.status_code == 400
    assert field in r.json()["detail"]
    assert not ChangeEvent.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.CHANGE_RECORD).exists()


def test_unknown_agent_is_404(responder, db):
    assert post("/api/v1/agents/nobody/changes", {"kind": "prompt", "version": "v1"}, user=responder).status_code == 404


def test_during_a_freeze_changes_are_refused_naming_it(agent, responder, make_user):
    lead = make_user("responder", username="incident-lead")
    freeze_on(lead)
    r = post(URL, {"kind": "deploy", "version": "build-118"}, user=responder)
    assert r.status_code == 409
    message = r.json()["error"]
    assert "change freeze" in message and "incident-lead" in message and "INC-12 refunds wrong" in message
    assert "UTC" in message  # since when
    assert not ChangeEvent.objects.exists()
    # lifted: accepted again
    fleet.change_freeze(actor=Actor.person(lead), on=False, reason="")
    assert post(URL, {"kind": "deploy", "version": "build-118"}, user=responder).status_code == 201


def test_freeze_refuses_config_edits_but_never_containment(agent, responder):
    freeze_on(responder)
    actor = Actor.person(responder)
    with pytest.raises(ChangeFrozen, match="budget caps"):
        agent_budget_caps_set(
            agent=agent,
            actor=actor,
            session_cost_cap=Decimal("1"),
            daily_cost_cap=None,
            session_token_cap=None,
            session_step_cap=None,
        )
    with pytest.raises(ChangeFrozen, match="change freeze"):
        agent_gate_settings_set(agent=agent, actor=actor, allowed_tools=["search"])
    agent.refresh_from_db()
    assert agent.session_cost_cap == Decimal("5") and agent.allowed_tools == ["search", "lookup_order", "send_email"]
    # containment goes through
    for action in ("pause", "kill"):
        r = post(f"/api/v1/agents/refund-agent/{action}", {"reason": "contain"}, user=responder)
        assert r.status_code == 200, r.content
    r = post("/api/v1/agents/refund-agent/resume", {"reason": "fixed"}, user=responder)
    assert r.status_code == 200
    assert post("/api/v1/agents/refund-agent/tools/search/disable", {}, user=responder).status_code == 200
    agent.refresh_from_db()
    assert agent.state == GateState.ACTIVE and agent.disabled_tools == ["search"]


def _ingest(ingest, make_spans, trace_id, start, **versions):
    spans = make_spans(agent="refund-agent", trace_id=trace_id, start=start, steps=[{"kind": "llm"}], **versions)
    ingest(spans)


def test_ingest_records_each_new_version_once_with_its_first_trace(
    agent, ingest, make_spans, django_capture_on_commit_callbacks
):
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(ingest, make_spans, "a" * 32, t0, prompt_version="p1", model_version="gpt-4o")
        _ingest(ingest, make_spans, "b" * 32, t0 + timedelta(minutes=1), prompt_version="p1", model_version="gpt-4o")
        _ingest(ingest, make_spans, "c" * 32, t0 + timedelta(minutes=2), prompt_version="p2", model_version="gpt-4o")
        _ingest(ingest, make_spans, "d" * 32, t0 + timedelta(minutes=3), prompt_version="p2", model_version="gpt-4o")
    events = {(e.kind, e.version): e for e in ChangeEvent.objects.filter(agent=agent)}
    assert set(events) == {("prompt", "p1"), ("model", "gpt-4o"), ("prompt", "p2")}
    assert events[("prompt", "p1")].first_trace_id == "a" * 32
    assert events[("model", "gpt-4o")].first_trace_id == "a" * 32
    assert events[("prompt", "p2")].first_trace_id == "c" * 32
    assert all(e.source == "ingest" and not e.during_freeze for e in events.values())


def test_a_batch_of_versions_already_recorded_asks_nothing_and_a_deleted_one_comes_back(
    agent, ingest, make_spans, django_capture_on_commit_callbacks, monkeypatch
):
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(ingest, make_spans, "a1" * 16, t0, prompt_version="p-seen", model_version="m-seen")
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        _ingest(ingest, make_spans, "a2" * 16, t0, prompt_version="p-seen", model_version="m-seen")
    assert len(after_commit) == 1  # detection's only: the versions are known, the change log is not asked

    ChangeEvent.objects.filter(agent=agent, version="p-seen").delete()
    monkeypatch.setattr("agents.change_log.SEEN_SECONDS", 0.0)  # what this process saw has aged out
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(ingest, make_spans, "a3" * 16, t0, prompt_version="p-seen", model_version="m-seen")
    assert ChangeEvent.objects.get(agent=agent, version="p-seen").first_trace_id == "a3" * 16


def test_ingest_still_records_during_a_freeze_flagged(
    agent, responder, ingest, make_spans, django_capture_on_commit_callbacks
):
    freeze_on(responder)
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(ingest, make_spans, "e" * 32, datetime.now(UTC), prompt_version="p9")
    event = ChangeEvent.objects.get(agent=agent, version="p9")
    assert event.during_freeze and event.first_trace_id == "e" * 32


def test_agent_page_lists_its_changes(
    agent, viewer, make_client, ingest, make_spans, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(ingest, make_spans, "f" * 32, datetime.now(UTC), prompt_version="<b>p3</b>")
    page = make_client(viewer).get("/agents/refund-agent/").content.decode()
    assert "Recent changes" in page
    assert "&lt;b&gt;p3&lt;/b&gt;" in page and "<b>p3</b>" not in page
    assert f"/traces/{'f' * 32}/?agent=refund-agent" in page


def test_admin_edits_are_refused_during_a_freeze(agent, responder, rf, django_user_model):
    from django.contrib import admin

    from agents.admin import AgentAdmin

    superuser = django_user_model.objects.create_superuser("root", password="pw-for-tests-1")
    request = rf.post("/admin/agents/agent/")
    request.user = superuser
    form_class = AgentAdmin(type(agent), admin.site).get_form(request, agent, change=True)
    unbound = form_class(instance=agent)
    data = {}
    for name, field in unbound.fields.items():
        value = unbound.initial.get(name)
        data[name] = field.prepare_value(value) if isinstance(value, list) else value
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["owner"] = "payments team"
    first = form_class(data=data, instance=agent)
    assert first.is_valid(), first.errors
    freeze_on(responder)
    frozen = form_class(data=data, instance=agent)
    assert not frozen.is_valid()
    assert "change freeze" in " ".join(frozen.non_field_errors())
    agent.refresh_from_db()
    assert agent.owner == ""


def test_the_budget_caps_form_is_refused_during_a_freeze_with_the_reason(agent, responder, make_client):
    freeze_on(responder, reason="INC-7 cost spiral")
    client = make_client(responder)
    r = client.post("/agents/refund-agent/budget/caps", {"session_cost_cap": "1"}, follow=True)
    assert r.status_code == 200
    assert "INC-7 cost spiral" in r.content.decode()
    agent.refresh_from_db()
    assert agent.session_cost_cap == Decimal("5")
    # the gate page still offers containment: the kill button works during the freeze
    assert client.post("/agents/refund-agent/kill", {"reason": "contain"}).status_code == 302
    agent.refresh_from_db()
    assert agent.state == GateState.KILLED


def test_a_responder_records_a_change_on_the_agent_page(agent, responder, viewer, make_client):
    client = make_client(responder)
    assert "Record a change" in client.get("/agents/refund-agent/").content.decode()
    r = client.post("/agents/refund-agent/changes", {"kind": "tools", "version": "t3", "description": "adds refund"})
    assert r.status_code == 302
    event = ChangeEvent.objects.get(agent=agent)
    assert (event.kind, event.version, event.source, event.actor_label) == ("tools", "t3", "ui", responder.username)
    bad = client.post("/agents/refund-agent/changes", {"kind": "tools", "version": ""}, follow=True)
    assert "version" in bad.content.decode().lower() and ChangeEvent.objects.count() == 1
    assert (
        make_client(viewer).post("/agents/refund-agent/changes", {"kind": "tools", "version": "t4"}).status_code == 403
    )
    freeze_on(responder, reason="INC-9")
    frozen = client.post("/agents/refund-agent/changes", {"kind": "tools", "version": "t5"}, follow=True)
    assert "INC-9" in frozen.content.decode() and ChangeEvent.objects.count() == 1
