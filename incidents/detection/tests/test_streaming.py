"""Streaming detectors on real ingest: dedup, per-agent settings, thresholds, rules through the gate."""

import json

from agents.models import AuditAction, AuditEntry, GateState
from incidents.detection import registry
from incidents.detection.runner import batch_traces, detect_batch
from incidents.detection.streaming._steps import step_attribute
from incidents.models import Alert, DetectorSetting, TimelineEntry
from traces.models import Step, Trace


def test_streaming_detectors_are_registered():
    streaming = {name for name, spec in registry.items() if spec.kind == "streaming"}
    assert streaming >= {"action_repeat", "session_caps", "token_ratio", "tool_not_allowed", "tool_errors",
                         "context_growth", "ping_pong", "truncation", "refusal_burst", "injection"}  # fmt: skip


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


def test_an_agent_row_overrides_the_all_agents_row_in_a_batch_of_several_agents(make_agent, make_spans, ingest):
    make_agent("muted")
    DetectorSetting.objects.create(detector="action_repeat", agent=None, enabled=False)
    DetectorSetting.objects.create(detector="action_repeat", agent=make_agent("loud-too"), enabled=True)
    for slug, trace_id in (("muted", "a" * 32), ("loud-too", "b" * 32)):
        ingest(make_spans(agent=slug, trace_id=trace_id, steps=_loop_steps(4)))
    alerts = detect_batch(trace_pks=[_trace_pk("a" * 32), _trace_pk("b" * 32)])
    assert [(a.agent.slug, a.detector) for a in alerts] == [("loud-too", "action_repeat")]


def test_default_threshold_needs_three_in_a_row(make_agent, make_spans, ingest):
    make_agent("retrier")
    steps = [*_loop_steps(2), {"kind": "tool", "tool": "search", "args": {"q": "x"}}, *_loop_steps(2)]
    ingest(make_spans(agent="retrier", trace_id="5" * 32, steps=steps))
    assert detect_batch(trace_pks=[_trace_pk("5" * 32)]) == []


def test_auto_pause_goes_through_the_gate(make_agent, make_spans, ingest, make_incident, redis_client,
                                          django_capture_on_commit_callbacks):  # fmt: skip
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


def test_a_call_refused_at_the_gate_still_raises_tool_misuse_and_says_it_was_refused(make_agent, make_spans, ingest):
    make_agent("reviewer", allowed_tools=["read_diff"])
    refused = {"kind": "tool", "tool": "merge_pull_request", "args": {"pr": 1}, "status": "error",
               "attributes": {"firebreak.refused": "ToolNotAllowed"}}  # fmt: skip
    ingest(make_spans(agent="reviewer", trace_id="9" * 32, steps=[refused]))
    (alert,) = detect_batch(trace_pks=[_trace_pk("9" * 32)])
    assert alert.detector == "tool_not_allowed"
    assert alert.title == "reviewer tried merge_pull_request, outside its allowed tools (refused at the gate)"
    assert alert.details["refused"] is True


def test_the_batch_steps_carry_their_columns_and_read_other_attributes_on_demand(make_agent, make_spans, ingest):
    agent = make_agent("batch-bot")
    ingest(make_spans(agent=agent.slug, trace_id="ab" * 16, steps=[{"kind": "tool", "tool": "lookup_order"}]))
    trace = Trace.objects.get(trace_id="ab" * 16)
    Step.objects.filter(trace=trace, kind="tool").update(attributes={"custom.key": "v", "gen_ai.request.model": "m-1"})
    stored = Step.objects.get(trace=trace, kind="tool")

    [loaded] = batch_traces([trace.pk])
    assert [s.span_id for s in loaded.batch_steps] == list(trace.steps.values_list("span_id", flat=True))
    tool = next(s for s in loaded.batch_steps if s.kind == "tool")
    assert (tool.id, tool.tool_name, tool.action_hash, tool.started_at, tool.tokens_in) == (
        stored.pk, stored.tool_name, stored.action_hash, stored.started_at, stored.tokens_in,
    )  # fmt: skip
    assert step_attribute(tool, "gen_ai.request.model") == "m-1"  # came with the steps' query
    assert step_attribute(tool, "custom.key") == "v"  # read from the database when asked
