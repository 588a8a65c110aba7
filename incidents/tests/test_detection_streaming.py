"""Streaming detectors on real ingest: the demo fleet's failure examples, healthy traffic, dedup, rules."""

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from django.db import transaction

from agents.models import AuditAction, AuditEntry, GateState
from demo.fleet import fleet_load
from incidents.detection import registry
from incidents.detection.runner import detect_batch
from incidents.models import Alert, DetectorSetting, TimelineEntry
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


def test_streaming_detectors_are_registered():
    import incidents.detection.streaming  # noqa: F401

    streaming = {name for name, spec in registry.items() if spec.kind == "streaming"}
    assert streaming >= {"action_repeat", "session_caps", "token_ratio", "tool_not_allowed", "tool_errors",
                         "context_growth", "ping_pong", "truncation", "refusal_burst", "injection"}  # fmt: skip


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
    from agents.models import Agent

    assert Agent.objects.get(slug="support-triage").state == GateState.PAUSED  # runaway loop
    assert Agent.objects.get(slug="research-assistant").state == GateState.PAUSED  # cost spiral
    assert Agent.objects.get(slug="code-reviewer").state == GateState.PAUSED  # declared
    assert Alert.objects.get(detector="tool_not_allowed").incident_id is not None
    assert Agent.objects.get(slug="sql-analyst").state == GateState.ACTIVE


# --- small, direct cases --------------------------------------------------------------------------------------


def _loop_steps(n=5, tool="lookup_order"):
    return [{"kind": "tool", "tool": tool, "args": {"order_id": "ORD-1"}} for _ in range(n)]


def _trace_pk(trace_id):
    return Trace.objects.get(trace_id=trace_id).pk


def test_dedup_running_twice_bumps_the_count(make_agent, make_spans, ingest):
    make_agent("looper")
    ingest(make_spans(agent="looper", trace_id="1" * 32, steps=_loop_steps()))
    pk = _trace_pk("1" * 32)
    (first,) = detect_batch(trace_pks=[pk])
    (again,) = detect_batch(trace_pks=[pk])
    assert again.pk == first.pk and again.count == 2
    assert Alert.objects.filter(detector="action_repeat", agent=first.agent).count() == 1
    assert AuditEntry.objects.filter(agent=first.agent, action=AuditAction.PAUSE).count() == 1


def test_agent_setting_disables_or_changes_thresholds(make_agent, make_spans, ingest):
    quiet, strict = make_agent("quiet"), make_agent("strict")
    DetectorSetting.objects.create(detector="action_repeat", agent=quiet, enabled=False)
    DetectorSetting.objects.create(detector="action_repeat", agent=strict, thresholds={"consecutive": 2})
    ingest(make_spans(agent="quiet", trace_id="2" * 32, steps=_loop_steps(6)))
    ingest(make_spans(agent="strict", trace_id="3" * 32, steps=_loop_steps(2)))
    alerts = detect_batch(trace_pks=[_trace_pk("2" * 32), _trace_pk("3" * 32)])
    assert [(a.agent.slug, a.detector) for a in alerts] == [("strict", "action_repeat")]
    assert "2× in a row" in alerts[0].title


def test_default_threshold_needs_three_in_a_row(make_agent, make_spans, ingest):
    make_agent("retrier")
    steps = [*_loop_steps(2), {"kind": "tool", "tool": "search", "args": {"q": "x"}}, *_loop_steps(2)]
    ingest(make_spans(agent="retrier", trace_id="5" * 32, steps=steps))
    assert detect_batch(trace_pks=[_trace_pk("5" * 32)]) == []


def test_auto_pause_goes_through_the_gate(make_agent, make_spans, ingest, make_incident, redis_client,
                                          django_capture_on_commit_callbacks):  # fmt: skip
    import json

    agent = make_agent("refund-bot")
    incident = make_incident(agents=[agent])
    ingest(make_spans(agent="refund-bot", trace_id="6" * 32, steps=_loop_steps(4)))
    with django_capture_on_commit_callbacks(execute=True):
        (alert,) = detect_batch(trace_pks=[_trace_pk("6" * 32)])
    agent.refresh_from_db()
    assert agent.state == GateState.PAUSED
    audit = AuditEntry.objects.get(agent=agent, action=AuditAction.PAUSE)
    assert audit.actor_label == "detector:action_repeat"
    assert f"Alert #{alert.pk}" in audit.reason
    assert json.loads(redis_client.get("firebreak:gate:refund-bot"))["state"] == GateState.PAUSED
    bodies = list(TimelineEntry.objects.filter(incident=incident).values_list("actor_label", "body"))
    assert any(label == "detector:action_repeat" for label, _ in bodies)  # the alert
    assert any("detector:action_repeat" in label and "aus" in body for label, body in bodies)  # the pause


def test_tool_errors_and_caps(make_agent, make_spans, ingest):
    make_agent("flaky", session_step_cap=5)
    failing = [{"kind": "tool", "tool": "search", "args": {"q": str(i)}, "status": "error", "error": "HTTP 503"}
               for i in range(3)]  # fmt: skip
    ingest(make_spans(agent="flaky", trace_id="7" * 32, steps=failing + [{"kind": "llm", "tokens_in": 10}] * 3))
    alerts = detect_batch(trace_pks=[_trace_pk("7" * 32)])
    assert sorted(a.detector for a in alerts) == ["session_caps", "tool_errors"]


def test_ping_pong_within_one_trace(make_agent, make_spans, ingest):
    make_agent("planner-x", allowed_tools=["handoff"])
    steps = [{"kind": "tool", "tool": "handoff", "args": {"attempt": i}, "agent_name": "ab"[i % 2]} for i in range(5)]
    ingest(make_spans(agent="planner-x", trace_id="8" * 32, steps=steps))
    (alert,) = detect_batch(trace_pks=[_trace_pk("8" * 32)])
    assert alert.detector == "ping_pong" and "5 times" in alert.title


def test_unknown_pks_are_ignored(db):
    assert detect_batch(trace_pks=[987654321]) == []
