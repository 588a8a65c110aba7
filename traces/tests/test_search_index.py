"""The in-trace search: one ILIKE over a step's fields joined (no match across two), the query taken literally."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.db import IContains
from traces.models import Step, StepKind, StepSearchText, Trace
from traces.selectors import trajectory

START = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _long_trace(agent, steps: int) -> Trace:
    trace = Trace.objects.create(trace_id="long", agent=agent, started_at=START)
    Step.objects.bulk_create(
        Step(
            trace=trace,
            span_id=f"{i:016x}",
            kind=StepKind.TOOL,
            name=f"step {i}",
            tool_name="lookup_order",
            tool_arguments={"order_id": f"A-{i}", "region": ["eu", "us", "apac"][i % 3]},
            output=f"order A-{i} shipped on day {i % 30} to warehouse {i % 7}",
            started_at=START + timedelta(milliseconds=i),
        )
        for i in range(steps)
    )
    return trace


@pytest.mark.django_db
def test_in_trace_search_finds_the_step_with_one_condition_over_the_joined_fields(agent):
    trace = _long_trace(agent, 3000)
    Step.objects.filter(trace=trace, span_id=f"{2345:016x}").update(output="refund of 9,000 EUR approved: VIP override")
    with CaptureQueriesContext(connection) as queries:
        window = trajectory.step_search(trace=trace, query="vip OVERRIDE")
    assert [step.span_id for step in window.steps] == [f"{2345:016x}"]
    search_sql = next(q["sql"] for q in queries.captured_queries if "ILIKE" in q["sql"])
    condition = Step.objects.filter(IContains(StepSearchText(), "vip OVERRIDE")).values("id")
    condition_sql, _ = condition.query.sql_with_params()
    assert condition_sql.split(" WHERE ")[1].split(" ILIKE ")[0] in search_sql


@pytest.mark.django_db
def test_in_trace_search_matches_a_field_not_the_join_of_two(agent):
    trace = _long_trace(agent, 3)
    # "step 1" + "lookup_order" are joined in the indexed text, but no single field holds "1lookup".
    assert trajectory.step_search(trace=trace, query="1lookup").steps == []
    assert trajectory.step_search(trace=trace, query="1\x1flookup").steps == []
    assert [s.name for s in trajectory.step_search(trace=trace, query="LOOKUP_order").steps] == [
        "step 0",
        "step 1",
        "step 2",
    ]


@pytest.mark.django_db
def test_in_trace_search_takes_like_wildcards_literally(agent):
    trace = _long_trace(agent, 3)
    Step.objects.filter(trace=trace, name="step 2").update(error_message=r"disk 100% full (C:\_tmp)")
    assert trajectory.step_search(trace=trace, query="%").steps[0].name == "step 2"
    assert len(trajectory.step_search(trace=trace, query="%").steps) == 1
    assert [s.name for s in trajectory.step_search(trace=trace, query=r"C:\_tmp").steps] == ["step 2"]
    assert [s.name for s in trajectory.step_search(trace=trace, query="order_id").steps] == [
        "step 0",
        "step 1",
        "step 2",
    ]
    assert trajectory.step_search(trace=trace, query="order%id").steps == []
