import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from agents.services import agent_kill, agent_pause
from core.actors import Actor
from incidents.models import (
    Alert,
    FailureClass,
    Incident,
    IncidentStatus,
    RunbookStep,
    TimelineEntry,
    TimelineKind,
)
from incidents.services import (
    incident_close,
    incident_declare,
    incident_severity_set,
    incident_status_set,
    runbook_tick,
    timeline_note_add,
)
from traces.models import Trace
from traces.services import trace_flag

pytestmark = pytest.mark.django_db


def kinds(incident) -> list[str]:
    return list(incident.timeline.order_by("created_at", "id").values_list("kind", flat=True))


# --- declaring ------------------------------------------------------------------------------------


def test_declaring_numbers_the_incident_and_attaches_agents_traces_and_runbook(responder, traced_agent):
    incident = incident_declare(
        title="Refund agent looping",
        severity="SEV1",
        failure_class="runaway-loop",
        agents=["refund-bot"],
        traces="a" * 32,
        commander=None,
        summary="It **loops**.",
        actor=Actor.person(responder),
    )
    assert incident.number == 1 and incident.ref == "INC-1"
    assert incident.status == IncidentStatus.DECLARED
    assert incident.commander == responder and incident.declared_by == responder
    assert [a.slug for a in incident.agents.all()] == ["refund-bot"]
    assert [t.trace_id for t in incident.traces.all()] == ["a" * 32]
    steps = list(incident.runbook_steps.order_by("order"))
    fc = FailureClass.objects.get(slug="runaway-loop")
    texts = [s.text for s in steps]
    assert {s["text"] for s in fc.runbook} <= set(texts)
    assert "Page the owning team" in texts and "Post-mortem due in 48 hours" in texts
    phases = [s.phase for s in steps]
    assert phases == sorted(phases, key=["contain", "assess", "remediate", "learn"].index)
    assert kinds(incident) == [TimelineKind.DECLARED]
    second = incident_declare(
        title="b",
        severity="SEV3",
        failure_class=fc,
        agents=[],
        traces=[],
        commander=None,
        summary="",
        actor=Actor.person(responder),
    )
    assert second.number == 2
    assert "Page the owning team" not in second.runbook_steps.values_list("text", flat=True)


def test_sev1_extras_only_for_sev1(make_incident):
    sev2 = make_incident(severity="SEV2")
    assert not RunbookStep.objects.filter(incident=sev2, text="Page the owning team").exists()


def test_commander_can_be_any_user(make_incident, make_user):
    other = make_user("viewer", username="alice")
    assert make_incident(commander="alice").commander == other


def test_viewer_cannot_declare_and_nothing_is_written(viewer):
    with pytest.raises(PermissionDenied):
        incident_declare(
            title="x", severity="SEV1", failure_class="runaway-loop", agents=[], traces=[], commander=None,
            summary="", actor=Actor.person(viewer),
        )  # fmt: skip
    assert Incident.objects.count() == 0 and TimelineEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("severity", {"severity": "SEV9"}),
        ("failure_class", {"failure_class": "no-such-class"}),
        ("agents", {"agents": ["ghost-bot"]}),
        ("traces", {"traces": ["f" * 32]}),
        ("commander", {"commander": "nobody"}),
        ("title", {"title": "  "}),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(make_incident, traced_agent, field, kwargs):
    with pytest.raises(ValidationError) as exc:
        make_incident(**{"agents": ["refund-bot"], **kwargs})
    assert field in exc.value.message_dict
    assert Incident.objects.count() == 0
    assert RunbookStep.objects.count() == 0 and TimelineEntry.objects.count() == 0


def test_declaring_from_an_alert_links_and_acknowledges_it(make_incident, traced_agent):
    trace = Trace.objects.get(trace_id="a" * 32)
    alert = Alert.objects.create(
        detector="loop", agent=traced_agent, trace=trace, fingerprint="fp1", title="Loop", suggested_severity="SEV2"
    )
    incident = make_incident(alert=alert)
    alert.refresh_from_db()
    assert alert.incident == incident and alert.status == Alert.Status.ACKNOWLEDGED
    assert list(incident.agents.all()) == [traced_agent] and list(incident.traces.all()) == [trace]
    assert TimelineKind.ALERT in kinds(incident)


@pytest.mark.django_db(transaction=True)
def test_concurrent_declarations_get_distinct_numbers(make_user):
    from django.apps import apps

    from core.roles import roles_seed
    from incidents.taxonomy import taxonomy_seed

    roles_seed(apps)
    taxonomy_seed(apps)
    user = make_user("responder")
    errors = []

    def declare():
        try:
            for _ in range(4):
                incident_declare(
                    title="t", severity="SEV3", failure_class="runaway-loop", agents=[], traces=[], commander=None,
                    summary="", actor=Actor.person(user),
                )  # fmt: skip
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=declare) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(Incident.objects.values_list("number", flat=True)) == list(range(1, 17))


# --- lifecycle ------------------------------------------------------------------------------------


def test_status_moves_forward_stamping_each_time(make_incident, responder):
    incident = make_incident()
    incident_status_set(incident=incident, status="investigating", actor=Actor.person(responder), note="looking")
    assert incident.status == "investigating" and incident.investigating_at
    incident_status_set(incident=incident, status="resolved", actor=Actor.person(responder))  # skipping contained
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at and incident.contained_at is None
    assert kinds(incident).count(TimelineKind.STATUS) == 2
    assert "looking" in incident.timeline.filter(kind="status").first().body


def test_status_never_moves_backwards(make_incident, responder):
    incident = make_incident()
    incident_status_set(incident=incident, status="contained", actor=Actor.person(responder))
    for status in ("investigating", "contained", "declared", "bogus"):
        with pytest.raises(ValidationError):
            incident_status_set(incident=incident, status=status, actor=Actor.person(responder))
    incident.refresh_from_db()
    assert incident.status == "contained"
    assert kinds(incident).count(TimelineKind.STATUS) == 1


def test_viewer_cannot_change_status_tick_or_note(make_incident, viewer):
    incident = make_incident()
    step = incident.runbook_steps.first()
    with pytest.raises(PermissionDenied):
        incident_status_set(incident=incident, status="investigating", actor=Actor.person(viewer))
    with pytest.raises(PermissionDenied):
        runbook_tick(incident=incident, step_id=step.pk, actor=Actor.person(viewer))
    with pytest.raises(PermissionDenied):
        timeline_note_add(incident=incident, body="hi", actor=Actor.person(viewer))
    with pytest.raises(PermissionDenied):
        incident_close(incident=incident, actor=Actor.person(viewer))
    incident.refresh_from_db()
    assert incident.status == "declared" and kinds(incident) == ["declared"]


def test_severity_change_goes_on_the_timeline(make_incident, responder):
    incident = make_incident(severity="SEV3")
    incident_severity_set(incident=incident, severity="SEV1", actor=Actor.person(responder))
    incident.refresh_from_db()
    assert incident.severity == "SEV1"
    assert incident.timeline.get(kind="severity").body.startswith("Severity: SEV3 → SEV1")
    with pytest.raises(ValidationError):
        incident_severity_set(incident=incident, severity="SEV7", actor=Actor.person(responder))


# --- runbook and notes ----------------------------------------------------------------------------


def test_runbook_ticks_are_timed_and_on_the_timeline(make_incident, responder):
    incident = make_incident()
    step = incident.runbook_steps.first()
    ticked = runbook_tick(incident=incident, step_id=step.pk, actor=Actor.person(responder))
    assert ticked.done_at and ticked.done_by == responder
    entry = incident.timeline.get(kind="runbook")
    assert step.text in entry.body and entry.body.startswith("Done")
    with pytest.raises(ValidationError):
        runbook_tick(incident=incident, step_id=step.pk, actor=Actor.person(responder))
    runbook_tick(incident=incident, step_id=step.pk, actor=Actor.person(responder), done=False)
    step.refresh_from_db()
    assert step.done_at is None and incident.timeline.filter(kind="runbook").count() == 2


def test_ticking_another_incidents_step_is_refused(make_incident, responder):
    first, second = make_incident(), make_incident()
    with pytest.raises(RunbookStep.DoesNotExist):
        runbook_tick(incident=first, step_id=second.runbook_steps.first().pk, actor=Actor.person(responder))


def test_notes_are_markdown_up_to_10000_characters(make_incident, responder):
    incident = make_incident()
    entry = timeline_note_add(
        incident=incident, body="**bold** <script>alert(1)</script>", actor=Actor.person(responder)
    )
    assert entry.kind == "note" and entry.actor == responder
    for body in ("", "   ", "x" * 10_001):
        with pytest.raises(ValidationError):
            timeline_note_add(incident=incident, body=body, actor=Actor.person(responder))
    assert incident.timeline.filter(kind="note").count() == 1


# --- signals from below: the gate and flagged steps -----------------------------------------------


def test_killing_every_linked_agent_contains_the_incident(
    make_incident, make_agent, responder, django_capture_on_commit_callbacks
):
    a, b = make_agent("bot-a"), make_agent("bot-b")
    incident = make_incident(agents=["bot-a", "bot-b"])
    other = make_incident(agents=["bot-a"])
    with django_capture_on_commit_callbacks(execute=True):
        agent_kill(agent=a, actor=Actor.person(responder), reason="looping")
    incident.refresh_from_db()
    other.refresh_from_db()
    assert incident.status == "declared"  # bot-b still runs
    assert other.status == "contained" and other.contained_at
    with django_capture_on_commit_callbacks(execute=True):
        agent_pause(agent=b, actor=Actor.person(responder))
    incident.refresh_from_db()
    assert incident.status == "contained"
    entry = incident.timeline.filter(kind="status").get()
    assert "Contained: every linked agent is stopped" in entry.body
    assert kinds(incident).count(TimelineKind.GATE) == 2


def test_auto_containment_leaves_later_statuses_alone(
    make_incident, make_agent, responder, django_capture_on_commit_callbacks
):
    agent = make_agent("bot-a")
    incident = make_incident(agents=["bot-a"])
    incident_status_set(incident=incident, status="resolved", actor=Actor.person(responder))
    with django_capture_on_commit_callbacks(execute=True):
        agent_kill(agent=agent, actor=Actor.person(responder))
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.contained_at is None


def test_a_flagged_step_goes_on_the_timeline_of_open_incidents_with_the_trace(
    make_incident, traced_agent, responder, django_capture_on_commit_callbacks
):
    incident = make_incident(traces=["a" * 32])
    unrelated = make_incident()
    trace = Trace.objects.get(trace_id="a" * 32)
    span_id = trace.steps.exclude(parent_span_id="").first().span_id
    with django_capture_on_commit_callbacks(execute=True):
        trace_flag(trace=trace, span_id=span_id, note="It looped here.", actor=Actor.person(responder))
    entry = incident.timeline.get(kind="flag")
    assert span_id in entry.body and "It looped here." in entry.body
    assert entry.data == {"trace": "a" * 32, "agent": trace.agent.slug, "span_id": span_id}
    assert not unrelated.timeline.filter(kind="flag").exists()
