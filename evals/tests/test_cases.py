"""Capturing a case (evals.services.eval_case_capture), the list order and the closure gate."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from core.actors import Actor
from evals import selectors, services
from evals.closure import eval_case_green
from evals.models import EvalCase, EvalRun
from evals.tests.conftest import ROOT_INPUT
from incidents.models import TimelineEntry
from incidents.services import incident_close

pytestmark = pytest.mark.django_db


def test_capture_from_a_trace_takes_input_flagged_step_and_forbidden_actions(refund_trace, responder):
    case = services.eval_case_capture(
        trace=refund_trace, expected_behaviour="Refund once.", actor=Actor.person(responder)
    )
    assert case.agent.slug == "refund-bot" and case.trace == refund_trace and case.incident is None
    assert case.input == ROOT_INPUT
    assert case.flagged_span_id == refund_trace.flagged_span_id
    assert case.title == "Refunded again after the first refund"  # the flag note, without an incident
    # the flagged call and the repeated one are the same action: suggested once
    assert case.forbidden_actions == [
        {"tool": "issue_refund", "arguments_pattern": '"amount": 900.*"order_id": "A-17"', "max_calls": 1}
    ]
    assert case.created_by == responder and case.severity == "" and case.failure_class is None
    assert not TimelineEntry.objects.filter(kind="eval").exists()


def test_suggested_pattern_matches_the_canonical_arguments(refund_trace):
    import json
    import re

    (suggestion,) = services.forbidden_actions_suggest(trace=refund_trace)
    assert re.search(suggestion["arguments_pattern"], json.dumps({"order_id": "A-17", "amount": 900}, sort_keys=True))
    assert not re.search(
        suggestion["arguments_pattern"], json.dumps({"order_id": "A-17", "amount": 90}, sort_keys=True)
    )


def test_capture_from_an_incident_takes_its_title_class_severity_and_writes_the_timeline(
    refund_trace, responder, make_incident
):
    incident = make_incident(severity="SEV2", failure_class="runaway-loop", traces=[refund_trace.trace_id])
    case = services.eval_case_capture(
        trace=refund_trace,
        incident=incident,
        expected_behaviour="Refund once.",
        forbidden_actions=[{"tool": "issue_refund"}],
        actor=Actor.person(responder),
    )
    assert case.title == incident.title and case.severity == "SEV2" and case.failure_class.slug == "runaway-loop"
    assert case.forbidden_actions == [{"tool": "issue_refund"}]
    entry = TimelineEntry.objects.get(incident=incident, kind="eval")
    assert f"EC-{case.pk}" in entry.body and entry.data["case"] == case.pk and entry.actor == responder


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("expected_behaviour", {"expected_behaviour": "   "}),
        ("forbidden_actions", {"forbidden_actions": "not json"}),
        ("forbidden_actions", {"forbidden_actions": {"tool": "x"}}),
        ("forbidden_actions", {"forbidden_actions": [{"arguments_pattern": "x"}]}),
        ("forbidden_actions", {"forbidden_actions": [{"tool": "x", "arguments_pattern": "("}]}),
        ("forbidden_actions", {"forbidden_actions": [{"tool": "x", "extra": 1}]}),
        ("input", {"input_text": ""}),
        ("severity", {"severity": "SEV9"}),
        ("failure_class", {"failure_class": "no-such-class"}),
    ],
)
def test_bad_capture_names_the_field_and_writes_nothing(refund_trace, responder, make_incident, field, kwargs):
    incident = make_incident()
    before = TimelineEntry.objects.count()
    args = {"expected_behaviour": "Refund once.", **kwargs}
    with pytest.raises(ValidationError) as exc:
        services.eval_case_capture(trace=refund_trace, incident=incident, actor=Actor.person(responder), **args)
    assert field in exc.value.message_dict
    assert EvalCase.objects.count() == 0 and TimelineEntry.objects.count() == before


def test_a_viewer_cannot_capture(refund_trace, viewer):
    with pytest.raises(PermissionDenied):
        services.eval_case_capture(trace=refund_trace, expected_behaviour="x", actor=Actor.person(viewer))
    assert EvalCase.objects.count() == 0


def _case(agent, title, *results, incident=None):
    case = EvalCase.objects.create(agent=agent, incident=incident, title=title, input="i", expected_behaviour="e")
    now = timezone.now()
    for i, passed in enumerate(results):
        EvalRun.objects.create(case=case, passed=passed, ran_at=now - timedelta(minutes=len(results) - i))
    return case


def test_list_shows_failing_first_then_never_run_then_passing(make_agent):
    agent = make_agent()
    passing = _case(agent, "passing", False, True)
    failing = _case(agent, "failing", True, False)
    never = _case(agent, "never")
    cases = selectors.eval_case_list()
    assert [c.pk for c in cases] == [failing.pk, never.pk, passing.pk]
    assert [c.latest_passed for c in cases] == [False, None, True]
    assert selectors.eval_summary(cases=cases) == {"failing": 1, "not_run": 1, "passing": 1}


def test_closure_needs_every_case_green(make_incident, make_agent, responder):
    agent = make_agent()
    incident = make_incident()
    assert "no eval case yet" in eval_case_green(incident)
    green = _case(agent, "green", True, incident=incident)
    assert eval_case_green(incident) is None
    red = _case(agent, "red", True, False, incident=incident)
    message = eval_case_green(incident)
    assert f"EC-{red.pk}" in message and f"EC-{green.pk}" not in message
    with pytest.raises(ValidationError):
        incident_close(incident=incident, actor=Actor.person(responder))
    EvalRun.objects.create(case=red, passed=True, ran_at=timezone.now())
    incident_close(incident=incident, actor=Actor.person(responder), confirm=True)  # the runbook is a loose end
    assert incident.status == "closed"


def test_a_captured_loop_forbids_the_repetition_not_the_tool(make_agent, make_spans, ingest, responder):
    """A runaway loop of 50 identical lookups: the case fails an agent that loops again and passes one
    that looks the order up once, as its expected behaviour says."""
    from traces.models import Trace

    make_agent("loop-capture")
    spans = make_spans(
        agent="loop-capture",
        steps=[{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "A-17"}} for _ in range(50)],
        root_input="Where is my order A-17?",
    )
    ingest(spans)
    trace = Trace.objects.get(trace_id=spans[0].trace_id)
    case = services.eval_case_capture(
        trace=trace, expected_behaviour="Look the order up once.", actor=Actor.person(responder)
    )
    [action] = case.forbidden_actions
    assert action["tool"] == "lookup_order" and action["max_calls"] == 1
    once = [("lookup_order", {"order_id": "A-17"})]
    assert services.forbidden_actions_violations(case.forbidden_actions, once) == []
    assert services.forbidden_actions_violations(case.forbidden_actions, once * 3) == [
        '3 calls of lookup_order matching /"order_id": "A-17"/; at most 1 allowed'
    ]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", 10_001])
def test_max_calls_must_be_a_whole_number_in_range(bad):
    with pytest.raises(ValidationError, match="max_calls"):
        services.forbidden_actions_clean([{"tool": "lookup_order", "max_calls": bad}])
