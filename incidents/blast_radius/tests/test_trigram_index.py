"""The blast radius's argument search (substring and ``re:``) is served by pg_trgm's index step_args_trgm."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import QuerySet

from incidents.blast_radius.selectors import blast_traces
from incidents.blast_radius.signature import BlastSignature
from traces.models import Step, StepKind, Trace

START = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = {"since": START - timedelta(hours=1), "until": START + timedelta(days=1)}


@pytest.fixture
def many_runs(db, make_agent):
    """300 runs of 10 tool calls; run 123's seventh step carries the needle."""
    agent = make_agent("refunds")
    traces = Trace.objects.bulk_create(
        Trace(trace_id=f"t{i}", agent=agent, user_id=f"u-{i % 50}", started_at=START + timedelta(minutes=i))
        for i in range(300)
    )
    Step.objects.bulk_create(
        Step(
            trace=trace,
            span_id=f"{n:016x}",
            kind=StepKind.TOOL,
            name="issue_refund",
            tool_name="issue_refund",
            tool_arguments={
                "order_id": f"A-{i}-{n}",
                "amount": i * 10 + n,
                "note": "VIP override" if (i, n) == (123, 7) else "standard",
            },
            started_at=trace.started_at + timedelta(seconds=n),
        )
        for i, trace in enumerate(traces)
        for n in range(10)
    )
    return traces


def _trigram_indexes() -> list[str]:
    """step_args_trgm as each day partition of the steps table holds it (the parent's index has no storage)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'step_args_trgm'::regclass")
        return [row[0] for row in cursor.fetchall()]


def _plan(queryset: QuerySet) -> str:
    with connection.cursor() as cursor:
        # New rows wait in the GIN index's pending list until a vacuum (or a full list) merges them; the
        # planner costs that list as read whole, so merge it as autovacuum would on a real table.
        for index in _trigram_indexes():
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        cursor.execute("ANALYZE traces_step")
        cursor.execute("ANALYZE traces_trace")
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


@pytest.mark.parametrize("args", ["vip OVERRIDE", r"re:vip\s+over+ide"])
def test_argument_search_finds_the_run_through_the_trigram_index(many_runs, args):
    traces = blast_traces(signature=BlastSignature(args=args), **WINDOW)
    assert [t.trace_id for t in traces] == ["t123"]
    plan = _plan(traces)
    assert any(f"Bitmap Index Scan on {index}" in plan for index in _trigram_indexes()), plan


def test_argument_search_takes_like_wildcards_literally(many_runs):
    Step.objects.filter(trace__trace_id="t7", span_id=f"{2:016x}").update(tool_arguments={"note": "100% off_today"})
    assert [t.trace_id for t in blast_traces(signature=BlastSignature(args="100%"), **WINDOW)] == ["t7"]
    assert [t.trace_id for t in blast_traces(signature=BlastSignature(args="f_t"), **WINDOW)] == ["t7"]
    assert list(blast_traces(signature=BlastSignature(args="100%off"), **WINDOW)) == []
