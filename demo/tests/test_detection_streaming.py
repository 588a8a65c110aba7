"""Streaming detectors on the demo fleet: each covered failure example raises its alerts, healthy traffic none.

Here, not in incidents/detection/tests: the demo fleet sits above incidents (demo may import every app).
"""

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from django.db import transaction

from agents.models import Agent, GateState
from demo.fleet import fleet_load
from incidents.detection.runner import detect_batch
from incidents.models import Alert
from traces.models import Trace

SEED = 11
ANCHOR = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)

# Which streaming detectors fire on each demo failure example. The hallucinated write has no detector:
# telling invented values from real ones needs grounding checks or a judge (scheduled judge_score).
EXPECTED = {
    "refusal-burst": {"refusal_burst"},
    "truncation": {"truncation"},
    "prompt-injection": {"injection"},
    "runaway-loop": {"action_repeat"},
    "cost-spiral": {"token_ratio", "context_growth", "session_caps"},
    "tool-not-allowed": {"tool_not_allowed"},
    "ping-pong": {"ping_pong", "session_caps", "action_repeat", "context_growth"},
}


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker):
    """The demo fleet loaded once and run through the streaming detectors, rolled back afterwards."""
    with django_db_blocker.unblock(), transaction.atomic():
        summary = fleet_load(seed=SEED, anchor=ANCHOR)
        pks = list(Trace.objects.values_list("pk", flat=True))
        alerts = detect_batch(trace_pks=pks)
        yield summary, pks, alerts
        transaction.set_rollback(True)


def _failure_trace_pks(summary) -> dict[str, set[int]]:
    out = {}
    for failure in summary.failures:
        out[failure.key] = set(Trace.objects.filter(trace_id__in=failure.trace_ids).values_list("pk", flat=True))
    return out


def test_each_covered_failure_example_raises_its_alerts(fleet, db):
    summary, _, alerts = fleet
    by_failure = _failure_trace_pks(summary)
    fired = defaultdict(set)
    for alert in Alert.objects.filter(pk__in=[a.pk for a in alerts]):
        for key, pks in by_failure.items():
            if alert.trace_id in pks:
                fired[key].add(alert.detector)
    assert dict(fired) == EXPECTED
    per_failure = defaultdict(list)
    for alert in Alert.objects.all():
        per_failure[(alert.detector, alert.trace_id)].append(alert)
    assert all(len(v) == 1 for v in per_failure.values())  # one alert per detector and example


def test_no_alert_on_healthy_traffic(fleet, db):
    summary, pks, _ = fleet
    failure_pks = set().union(*_failure_trace_pks(summary).values())
    false_positives = Alert.objects.exclude(trace_id__in=failure_pks)
    assert len(pks) > 500
    assert [(a.detector, a.title) for a in false_positives] == []


def test_alerts_carry_trace_step_and_class(fleet, db):
    summary, _, _ = fleet
    (loop,) = _failure_trace_pks(summary)["runaway-loop"]
    alert = Alert.objects.get(detector="action_repeat", trace_id=loop)
    steps = list(Trace.objects.get(pk=loop).steps.filter(kind="tool").order_by("started_at", "id"))
    assert alert.span_id == steps[2].span_id  # the third identical call
    assert alert.title.startswith("lookup_order called") and "in a row with identical arguments" in alert.title
    assert alert.failure_class.slug == "runaway-loop"
    spiral = Alert.objects.get(detector="token_ratio")
    assert spiral.details["ratio"] > 60 and spiral.details["baseline_median"] < 8
    assert Alert.objects.get(detector="tool_not_allowed").title.startswith("merge_pull_request is not among")


def test_rules_act_on_the_fleet(fleet, db):
    assert Agent.objects.get(slug="support-triage").state == GateState.PAUSED  # runaway loop
    assert Agent.objects.get(slug="research-assistant").state == GateState.PAUSED  # cost spiral
    assert Agent.objects.get(slug="code-reviewer").state == GateState.PAUSED  # declared
    assert Alert.objects.get(detector="tool_not_allowed").incident_id is not None
    assert Agent.objects.get(slug="sql-analyst").state == GateState.ACTIVE
