"""Closing an incident with the closure check evals adds (incidents.hooks): a green eval case, and for
SEV1/SEV2 a published post-mortem (the check incidents adds itself).

Here, not in incidents/tests: evals sits above incidents, so only evals' tests may import both.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.actors import Actor
from evals.models import EvalCase, EvalRun
from incidents import hooks
from incidents.models import PostMortem
from incidents.selectors import incident_close_blockers
from incidents.services import incident_close, incident_status_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def traced_agent(make_agent, make_spans, ingest):
    """An agent ("refund-bot") with one ingested trace."""
    agent = make_agent("refund-bot")
    ingest(make_spans(agent="refund-bot", trace_id="a" * 32, steps=[{"kind": "tool", "tool": "search"}]))
    return agent


def green_eval_case(incident, agent):
    case = EvalCase.objects.create(agent=agent, incident=incident, title="no loop", input="x", expected_behaviour="y")
    EvalRun.objects.create(case=case, passed=True, ran_at=timezone.now())
    return case


def test_the_closure_checks_are_registered():
    names = [c.__name__ for c in hooks.closure_checks]
    assert "postmortem_published_for_sev1_sev2" in names and "eval_case_green" in names


def test_closing_sev1_needs_a_published_postmortem_and_a_green_eval_case(make_incident, responder, traced_agent):
    incident = make_incident(severity="SEV1", agents=["refund-bot"])
    with pytest.raises(ValidationError) as exc:
        incident_close(incident=incident, actor=Actor.person(responder))
    assert exc.value.messages == [
        "Needs a published post-mortem (SEV1/SEV2) — none yet",
        "Needs an eval case whose latest run passed — no eval case yet",
    ]
    assert incident_close_blockers(incident) == exc.value.messages
    incident.refresh_from_db()
    assert incident.status == "declared" and incident.closed_at is None

    PostMortem.objects.create(incident=incident, status=PostMortem.Status.DRAFT)
    case = EvalCase.objects.create(agent=traced_agent, incident=incident, title="c", input="i", expected_behaviour="e")
    assert incident_close_blockers(incident) == [
        "Needs a published post-mortem (SEV1/SEV2) — it is draft",
        f"Needs an eval case whose latest run passed — eval case EC-{case.pk} has no passing run yet",
    ]
    EvalRun.objects.create(case=case, passed=True, ran_at=timezone.now() - timedelta(hours=1))
    EvalRun.objects.create(case=case, passed=False, ran_at=timezone.now())  # the latest run decides
    assert len(incident_close_blockers(incident)) == 2

    PostMortem.objects.filter(incident=incident).update(status="published")
    EvalRun.objects.create(case=case, passed=True, ran_at=timezone.now() + timedelta(seconds=1))
    assert incident_close_blockers(incident) == []
    # the checks pass; the runbook left undone is a loose end the responder confirms
    incident_close(incident=incident, actor=Actor.person(responder), confirm=True)
    incident.refresh_from_db()
    assert incident.status == "closed" and incident.closed_at
    with pytest.raises(ValidationError):
        incident_close(incident=incident, actor=Actor.person(responder))


def test_sev3_closes_with_a_green_eval_case_and_no_postmortem(make_incident, responder, traced_agent):
    incident = make_incident(severity="SEV3")
    with pytest.raises(ValidationError) as exc:
        incident_status_set(
            incident=incident, status="closed", actor=Actor.person(responder)
        )  # closing goes through the checks
    assert exc.value.messages == ["Needs an eval case whose latest run passed — no eval case yet"]
    green_eval_case(incident, traced_agent)
    incident_close(incident=incident, actor=Actor.person(responder), confirm=True)
    assert incident.status == "closed"
