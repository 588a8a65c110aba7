"""The demo history: months of past incidents replayed through the services, once per seed."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from agents.models import Agent, AuditAction, AuditEntry, GateState
from agents.services import agent_register
from demo.fleet import AGENTS, DEMO_ACTOR
from demo.fleet.history import PLAN, history_load
from evals.models import EvalCase, EvalRun
from incidents.models import (
    ActionItem,
    Alert,
    FailureClass,
    Incident,
    IncidentStatus,
    PostMortem,
    Severity,
    TimelineEntry,
)
from incidents.postmortems.metrics import recurrence, time_to_contain_resolve
from traces.models import Trace

SEED = 11
ANCHOR = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker):
    """The demo agents and their history, loaded once for this module and rolled back afterwards."""
    with django_db_blocker.unblock(), transaction.atomic():
        for spec in AGENTS:
            agent_register(actor=DEMO_ACTOR, **spec.register_kwargs())
        yield history_load(seed=SEED, anchor=ANCHOR)
        transaction.set_rollback(True)


@pytest.fixture
def history(loaded, db):
    return loaded


def test_every_planned_incident_is_declared_in_the_past(history):
    incidents = list(Incident.objects.order_by("number"))
    assert history.incidents == len(PLAN) == len(incidents)
    assert 25 <= len(incidents) <= 40
    declared = [i.declared_at for i in incidents]
    assert declared == sorted(declared)  # numbered in the order they happened
    assert ANCHOR - timedelta(days=121) < declared[0] and declared[-1] < ANCHOR


def test_every_failure_class_and_severity_is_present(history):
    classes = set(Incident.objects.values_list("failure_class__slug", flat=True))
    assert classes == set(FailureClass.objects.values_list("slug", flat=True))
    severities = [i.severity for i in Incident.objects.all()]
    assert set(severities) == set(Severity.values)
    assert severities.count(Severity.SEV1) < severities.count(Severity.SEV2) + severities.count(Severity.SEV3)


def test_timelines_are_in_time_order_and_in_the_past(history):
    for incident in Incident.objects.all():
        entries = list(incident.timeline.order_by("id"))
        times = [e.created_at for e in entries]
        assert times == sorted(times), incident.ref
        assert times[-1] < ANCHOR
        assert entries[0].kind == "declared"
        assert times[0] == incident.declared_at
    assert not TimelineEntry.objects.filter(created_at__gte=ANCHOR).exists()


def test_lifecycles_run_detected_contained_resolved_closed(history):
    closed = Incident.objects.filter(status=IncidentStatus.CLOSED)
    assert closed.count() >= 25
    for incident in closed:
        assert incident.declared_at < incident.contained_at < incident.resolved_at < incident.closed_at < ANCHOR
        assert incident.contained_at - incident.declared_at < timedelta(hours=2)
        assert incident.resolved_at - incident.contained_at > timedelta(minutes=30)
    assert Incident.objects.exclude(status=IncidentStatus.CLOSED).count() >= 3


def test_containment_went_through_the_gate_services(history):
    audit = AuditEntry.objects.filter(incident_number__isnull=False)
    actions = set(audit.values_list("action", flat=True))
    assert {AuditAction.KILL, AuditAction.PAUSE, AuditAction.RESUME, AuditAction.TOOL_DISABLE} <= actions
    assert {AuditAction.BUDGET_FREEZE, AuditAction.BUDGET_UNFREEZE} <= actions
    assert history.audit_rows == audit.count()
    assert not audit.filter(created_at__gte=ANCHOR).exists()
    kill = audit.filter(action=AuditAction.KILL).first()
    incident = Incident.objects.get(number=kill.incident_number)
    assert incident.declared_at < kill.created_at <= incident.contained_at
    # Every agent is running again at the end: the live fleet is not left stopped.
    assert set(Agent.objects.values_list("state", flat=True)) == {GateState.ACTIVE}
    assert not Agent.objects.filter(budget_frozen=True).exists()
    assert all(not a.disabled_tools for a in Agent.objects.all())


def test_published_postmortems_have_written_sections_and_attached_traces_that_exist(history):
    published = PostMortem.objects.filter(status=PostMortem.Status.PUBLISHED)
    assert published.count() == history.postmortems_published >= 20
    for pm in published:
        assert pm.published_at < ANCHOR
        assert all(s["body"].strip() for s in pm.sections)
        text = " ".join(s["body"] for s in pm.sections)
        assert "{" not in text and "lorem" not in text.lower()
        assert "1 trajectories" not in text and "1 users" not in text
        attached = list(pm.attached_traces.all())
        assert attached
        assert Trace.objects.filter(pk__in=[t.pk for t in attached]).count() == len(attached)
    assert PostMortem.objects.filter(status=PostMortem.Status.IN_REVIEW).exists()
    assert PostMortem.objects.filter(status=PostMortem.Status.DRAFT).exists()


def test_action_items_some_done_some_open(history):
    statuses = set(ActionItem.objects.values_list("status", flat=True))
    assert {ActionItem.Status.DONE, ActionItem.Status.OPEN} <= statuses
    assert not ActionItem.objects.filter(done_at__gte=ANCHOR).exists()


def test_eval_cases_have_runs_some_red_before_green(history):
    cases = EvalCase.objects.all()
    assert cases.count() == history.eval_cases == len(PLAN)
    red_first = 0
    for case in cases.filter(incident__status=IncidentStatus.CLOSED):
        runs = list(case.runs.order_by("ran_at", "id"))
        assert runs[-1].passed
        red_first += not runs[0].passed
    assert red_first >= 3
    assert not EvalRun.objects.filter(ran_at__gte=ANCHOR).exists()
    assert not Alert.objects.exists()  # red before green never went red after green: no alert


def test_metrics_show_months_of_points_and_recurrences(history):
    times = time_to_contain_resolve(now=ANCHOR)
    assert times["measured"] == len(PLAN)
    points = [v for s in times["severities"] for v in times["contain"][s] if v is not None]
    assert len(points) > 10
    assert len(times["weeks"]) >= 17
    assert recurrence()["recurring"] >= 2


def test_history_traces_were_not_sent_to_detection(history, django_capture_on_commit_callbacks):
    # A backfill is stored without live detection: no alerts, no detector-declared incidents, no backlog.
    assert not Alert.objects.exists()
    assert not Incident.objects.filter(declared_by__isnull=True, summary__startswith="Declared by").exists()


def test_loading_twice_creates_nothing_new(history):
    counts = (Incident.objects.count(), Trace.objects.count(), AuditEntry.objects.count(), EvalRun.objects.count())
    again = history_load(seed=SEED, anchor=ANCHOR + timedelta(days=1))
    assert again.already_loaded
    assert counts == (
        Incident.objects.count(),
        Trace.objects.count(),
        AuditEntry.objects.count(),
        EvalRun.objects.count(),
    )


def test_the_ping_pong_fix_gives_config_change_its_golden_run(history):
    # The fleet's only config-change run is its ping-pong example; the run after the fix is the golden one.
    (golden,) = Trace.objects.filter(is_golden=True).select_related("agent")
    assert (golden.agent.slug, golden.input_class, golden.status, golden.error_count) == (
        "planner",
        "config-change",
        "ok",
        0,
    )
    assert not golden.incidents.exists() and golden.started_at < ANCHOR
