from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from incidents.models import (
    SEVERITY_DEFINITIONS,
    ActionItem,
    FailureClass,
    Incident,
    PostMortem,
    PostMortemTemplate,
    Severity,
)
from incidents.taxonomy import FAILURE_CLASSES


@pytest.fixture
def incident(db):
    return Incident.objects.create(
        number=7, title="Refund agent looping", severity=Severity.SEV1, failure_class=FailureClass.objects.first()
    )


def test_the_eight_failure_classes_are_seeded_with_signals_and_runbooks(db):
    classes = list(FailureClass.objects.all())
    assert [c.slug for c in classes] == [fc["slug"] for fc in FAILURE_CLASSES]
    assert len(classes) == 8
    for fc in classes:
        assert fc.description and fc.signals
        phases = {step["phase"] for step in fc.runbook}
        assert {"contain", "learn"} <= phases, fc.slug


def test_postmortem_templates_are_seeded_with_the_sev1_agent_questions(db):
    sev1 = PostMortemTemplate.objects.get(slug="sev1-agent")
    titles = [s["title"] for s in sev1.sections]
    assert titles[0] == "What did the agent do?"
    assert any("guardrails" in t for t in titles)
    assert set(PostMortemTemplate.objects.values_list("slug", flat=True)) == {"sev1-agent", "ai-questions", "standard"}


def test_every_severity_has_a_definition():
    assert set(SEVERITY_DEFINITIONS) == set(Severity)


def test_incident_reads_as_inc_number_and_starts_declared(incident):
    assert incident.ref == "INC-7"
    assert str(incident).startswith("INC-7 ")
    assert incident.status == "declared"
    assert incident.is_open
    assert incident.status_time("declared") is not None


def test_incident_numbers_are_unique(incident):
    with pytest.raises(IntegrityError):
        Incident.objects.create(number=7, title="x", severity="SEV3", failure_class=incident.failure_class)


def test_postmortem_is_overdue_only_past_due_and_unpublished(incident):
    pm = PostMortem.objects.create(incident=incident, due_at=timezone.now() - timedelta(hours=1))
    assert pm.is_overdue
    pm.status = PostMortem.Status.PUBLISHED
    assert not pm.is_overdue
    pm.status = PostMortem.Status.DRAFT
    pm.due_at = timezone.now() + timedelta(hours=47)
    assert not pm.is_overdue


def test_only_prompt_changes_are_not_structural(incident):
    pm = PostMortem.objects.create(incident=incident)
    prompt = ActionItem.objects.create(postmortem=pm, title="reword", kind=ActionItem.Kind.PROMPT)
    pin = ActionItem.objects.create(postmortem=pm, title="pin model", kind=ActionItem.Kind.VERSION_PIN)
    assert not prompt.is_structural
    assert pin.is_structural
