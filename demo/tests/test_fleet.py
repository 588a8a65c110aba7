"""The demo fleet: a deterministic plan, loaded through ingest, with one example of each failure class."""

import itertools
from collections import defaultdict
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from agents.models import Agent
from demo.fleet import BATCH_SPANS, fleet_generate, fleet_load
from demo.fleet.history import PLAN, history_load
from incidents.taxonomy import FAILURE_CLASSES
from traces.ingest.spans import Span
from traces.models import Step, Trace

SEED = 11
ANCHOR = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def _rows(plan) -> list[tuple]:
    return [tuple(getattr(s, f.name) for f in fields(Span)) for batch in plan.batches for s in batch]


def _spans(plan) -> list[Span]:
    return [s for batch in plan.batches for s in batch]


@pytest.fixture(scope="module")
def plan():
    return fleet_generate(seed=SEED, anchor=ANCHOR)


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker):
    """The full fleet loaded once for this module, inside a transaction rolled back afterwards."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield fleet_load(seed=SEED, anchor=ANCHOR)
        transaction.set_rollback(True)


def _example(summary, key: str) -> list[Trace]:
    (failure,) = [f for f in summary.failures if f.key == key]
    return list(Trace.objects.filter(trace_id__in=failure.trace_ids).select_related("agent"))


def _steps(trace: Trace) -> list[Step]:
    return list(trace.steps.order_by("started_at", "id"))


# --- the plan ---------------------------------------------------------------------------------------


def test_same_seed_and_anchor_give_an_identical_plan(plan):
    again = fleet_generate(seed=SEED, anchor=ANCHOR)
    assert _rows(again) == _rows(plan)
    assert again.agents == plan.agents
    assert again.failures == plan.failures


def test_another_seed_gives_another_plan(plan):
    other = fleet_generate(seed=SEED + 1, anchor=ANCHOR)
    assert not set(other.trace_ids) & set(plan.trace_ids)
    contents = [(s.agent, s.input_class, s.tool_name, s.output) for s in _spans(plan)]
    assert [(s.agent, s.input_class, s.tool_name, s.output) for s in _spans(other)] != contents


def test_a_later_anchor_gets_new_ids_so_it_cannot_rewrite_an_earlier_load(plan):
    later = fleet_generate(seed=SEED, anchor=ANCHOR + timedelta(hours=3))
    assert not set(later.trace_ids) & set(plan.trace_ids)
    assert max(s.start for s in _spans(later)) > max(s.start for s in _spans(plan))


def test_a_naive_anchor_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        fleet_generate(seed=SEED, anchor=datetime(2025, 3, 4, 12, 0))


def test_plan_is_a_day_of_traffic_in_ingest_sized_batches_of_whole_traces(plan):
    assert 2_500 <= len(plan.trace_ids) <= 3_500
    assert 25_000 <= plan.span_count <= 35_000
    assert all(0 < len(batch) <= BATCH_SPANS for batch in plan.batches)
    batch_of = {}
    for i, batch in enumerate(plan.batches):
        for s in batch:
            assert batch_of.setdefault(s.trace_id, i) == i, "a trace is split across batches"
    spans = _spans(plan)
    assert min(s.start for s in spans) >= ANCHOR - timedelta(hours=24)
    assert max(s.end for s in spans) <= ANCHOR
    assert {s.agent for s in spans} == {a.slug for a in plan.agents}


def test_agents_have_owners_models_caps_and_high_risk_tools_among_allowed_ones(plan):
    assert len(plan.agents) >= 8
    for spec in plan.agents:
        assert spec.owner and spec.model_version and spec.prompt_version and spec.session_cost_cap > 0
        assert set(spec.high_risk_tools) <= set(spec.allowed_tools)


def test_healthy_traffic_spends_about_five_input_tokens_per_output_token(plan):
    failing = {t for f in plan.failures for t in f.trace_ids}
    tokens = defaultdict(lambda: [0, 0])
    for s in _spans(plan):
        if s.trace_id not in failing:
            tokens[s.agent][0] += s.tokens_in
            tokens[s.agent][1] += s.tokens_out
    for agent, (tokens_in, tokens_out) in tokens.items():
        assert 4 <= tokens_in / tokens_out <= 6.5, agent


def test_there_is_one_example_of_each_failure_each_named_in_the_taxonomy(plan):
    keys = [f.key for f in plan.failures]
    assert sorted(keys) == sorted(
        [
            "runaway-loop",
            "cost-spiral",
            "tool-not-allowed",
            "hallucinated-write",
            "refusal-burst",
            "truncation",
            "ping-pong",
            "prompt-injection",
        ]
    )
    assert {f.failure_class for f in plan.failures} <= {fc["slug"] for fc in FAILURE_CLASSES}
    roots = {s.trace_id: s for s in _spans(plan) if s.is_root}
    for f in plan.failures:
        for trace_id in f.trace_ids:
            assert roots[trace_id].attributes["firebreak.demo.failure"] == f.key


# --- loaded through ingest --------------------------------------------------------------------------


def test_load_registers_the_agents_and_stores_every_trace_and_span(loaded, plan, db):
    assert loaded.spans_stored == loaded.spans == plan.span_count
    assert sorted(loaded.agents_registered) == sorted(a.slug for a in plan.agents)
    for spec in plan.agents:
        agent = Agent.objects.get(slug=spec.slug)
        assert agent.allowed_tools == list(spec.allowed_tools)
        assert agent.high_risk_tools == list(spec.high_risk_tools)
    assert Trace.objects.filter(trace_id__in=plan.trace_ids).count() == loaded.traces == len(plan.trace_ids)
    assert Step.objects.filter(trace__trace_id__in=plan.trace_ids).count() == plan.span_count


def test_running_traces_are_recent_and_unfinished(loaded, plan, db):
    with_root = {s.trace_id for s in _spans(plan) if s.is_root}
    unfinished = set(plan.trace_ids) - with_root
    running = Trace.objects.filter(status="running", trace_id__in=plan.trace_ids)
    assert unfinished and set(running.values_list("trace_id", flat=True)) == unfinished
    for trace in running:
        assert trace.ended_at is None
        assert ANCHOR - timedelta(minutes=10) < trace.started_at < ANCHOR


def test_runaway_loop_repeats_one_action_50_times_in_a_row(loaded, db):
    (trace,) = _example(loaded, "runaway-loop")
    hashes = [s.action_hash for s in _steps(trace)]
    longest = max(len(list(run)) for h, run in itertools.groupby(hashes) if h)
    assert longest == 50
    assert trace.status == "error"


def test_cost_spiral_spends_far_more_input_per_output_token_than_the_agent_normally_does(loaded, db):
    (trace,) = _example(loaded, "cost-spiral")
    assert trace.tokens_in / trace.tokens_out >= 50
    others = Trace.objects.filter(agent=trace.agent).exclude(pk=trace.pk).exclude(tokens_out=0)
    normal = sum(t.tokens_in for t in others) / sum(t.tokens_out for t in others)
    assert normal < 7
    context = [s.tokens_in for s in _steps(trace) if s.kind == "llm"]
    assert len(context) >= 10 and context == sorted(set(context)), "the context grows at every model call"


def test_only_the_tool_misuse_example_calls_a_tool_outside_its_agents_allowed_set(loaded, plan, db):
    (example,) = _example(loaded, "tool-not-allowed")
    calls = Step.objects.filter(trace__trace_id__in=plan.trace_ids, kind="tool").values_list(
        "trace__trace_id", "tool_name", "trace__agent__allowed_tools"
    )
    outside = {(trace_id, tool) for trace_id, tool, allowed in calls if tool not in allowed}
    assert outside == {(example.trace_id, "merge_pull_request")}


def _ungrounded_writes(trace: Trace, write_tool: str) -> list[list[str]]:
    """For each call of ``write_tool``: argument values absent from the tool and retrieval outputs before it."""
    seen, out = "", []
    for step in _steps(trace):
        if step.tool_name == write_tool and step.status == "ok":
            out.append([str(v) for v in (step.tool_arguments or {}).values() if str(v) not in seen])
        elif step.kind in ("tool", "retrieval"):
            seen += step.output
    return out


def test_hallucinated_write_books_values_absent_from_the_retrieved_context(loaded, plan, db):
    (example,) = _example(loaded, "hallucinated-write")
    (invented,) = _ungrounded_writes(example, "create_invoice")
    assert "12400.00" in invented and len(invented) >= 3
    healthy = Trace.objects.filter(agent__slug="invoice-extractor", trace_id__in=plan.trace_ids).exclude(pk=example.pk)
    writes = [w for trace in healthy for w in _ungrounded_writes(trace, "create_invoice")]
    assert len(writes) > 100
    assert all(w == [] for w in writes), "healthy invoices are booked from what was read"


def test_refusal_burst_is_several_refusals_within_minutes_and_nowhere_else(loaded, plan, db):
    burst = _example(loaded, "refusal-burst")
    refusing = Step.objects.filter(
        trace__trace_id__in=plan.trace_ids, kind="llm", output__icontains="can't help with that"
    ).values_list("trace__trace_id", flat=True)
    assert set(refusing) == {t.trace_id for t in burst}
    assert len(burst) >= 5
    starts = [t.started_at for t in burst]
    assert max(starts) - min(starts) <= timedelta(minutes=15)


def test_truncation_stops_at_max_tokens_and_is_the_only_one(loaded, plan, db):
    (trace,) = _example(loaded, "truncation")
    cut = Step.objects.filter(trace__trace_id__in=plan.trace_ids, finish_reason="length")
    assert [s.trace_id for s in cut] == [trace.pk]
    assert cut[0].tokens_out == cut[0].attributes["gen_ai.request.max_tokens"]
    assert trace.root_output == cut[0].output


def test_ping_pong_bounces_one_request_between_planner_and_executor(loaded, db):
    (trace,) = _example(loaded, "ping-pong")
    handoffs = [s for s in _steps(trace) if s.tool_name == "handoff"]
    assert len(handoffs) >= 10
    assert len({s.tool_arguments["request_id"] for s in handoffs}) == 1
    assert [s.agent_name for s in handoffs] == ["planner", "executor"] * (len(handoffs) // 2)
    assert [s.tool_arguments["to"] for s in handoffs] == ["executor", "planner"] * (len(handoffs) // 2)


def test_prompt_injection_is_followed_by_mailing_data_out_and_keeps_its_html_verbatim(loaded, db):
    (trace,) = _example(loaded, "prompt-injection")
    steps = _steps(trace)
    injected = next(i for i, s in enumerate(steps) if "ignore previous instructions" in s.output.lower())
    assert steps[injected].kind == "retrieval"
    mails = [s for s in steps[injected:] if s.tool_name == "send_email"]
    assert mails and not mails[0].tool_arguments["to"].endswith("@example.com")
    assert "<script>alert(1)</script>" in steps[injected].output
    assert "<img src=x onerror=alert(1)>" in steps[injected].output


def test_every_input_class_of_every_agent_has_a_golden_run_that_went_right(loaded, plan, db):
    classes = set(
        Trace.objects.filter(
            agent__slug__in=[a.slug for a in plan.agents], status="ok", error_count=0, flagged_span_id=""
        )
        .exclude(input_class="")
        .values_list("agent__slug", "input_class")
    )
    golden = list(
        Trace.objects.filter(is_golden=True).values_list("agent__slug", "input_class", "status", "flagged_span_id")
    )
    assert classes and {(slug, cls) for slug, cls, _, _ in golden} == classes
    assert {(status, flag) for _, _, status, flag in golden} == {("ok", "")}
    assert not [trace for trace in _example(loaded, "runaway-loop") if trace.is_golden]  # never a failing run


def test_loading_the_same_seed_and_anchor_again_stores_nothing(loaded, plan, db):
    out = StringIO()
    call_command("demo_fleet", "--seed", str(SEED), "--anchor", ANCHOR.isoformat(), stdout=out)
    text = out.getvalue()
    assert f"{plan.span_count:,} sent, 0 stored" in text
    assert "Nothing new stored" in text
    for f in plan.failures:
        assert all(trace_id in text for trace_id in f.trace_ids)
    assert Step.objects.filter(trace__trace_id__in=plan.trace_ids).count() == plan.span_count
    assert Agent.objects.filter(slug__in=[a.slug for a in plan.agents]).count() == len(plan.agents)
    assert f"Demo history, seed {SEED}: {len(PLAN)} past incidents" in text  # loaded once, by default
    assert "history loaded in" in text
    again = StringIO()
    call_command("demo_fleet", "--seed", str(SEED), "--anchor", ANCHOR.isoformat(), "--no-history", stdout=again)
    assert "Demo history" not in again.getvalue()
    assert history_load(seed=SEED, anchor=ANCHOR).already_loaded
