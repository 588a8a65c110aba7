"""Migration 0004 (a trace is unique per agent and trace id) runs on existing data and keeps it."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("traces", "0003_lean_ingest_indexes")]
AFTER = [("traces", "0004_trace_owner_agent")]
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_traces_and_steps_survive_and_a_second_agent_may_reuse_the_id(make_agent):
    victim, other = make_agent("victim-bot"), make_agent("other-bot")
    try:
        apps = _migrate(BEFORE)
        Trace, Step = apps.get_model("traces", "Trace"), apps.get_model("traces", "Step")
        trace = Trace.objects.create(trace_id="a" * 32, agent_id=victim.pk, started_at=T0, step_count=1, tokens_in=7)
        Step.objects.create(trace=trace, span_id="b" * 16, name="root", started_at=T0)
        with pytest.raises(IntegrityError), transaction.atomic():
            Trace.objects.create(trace_id="a" * 32, agent_id=other.pk, started_at=T0)

        apps = _migrate(AFTER)
        Trace, Step = apps.get_model("traces", "Trace"), apps.get_model("traces", "Step")
        kept = Trace.objects.get(trace_id="a" * 32)
        assert (kept.pk, kept.agent_id, kept.step_count, kept.tokens_in) == (trace.pk, victim.pk, 1, 7)
        assert list(Step.objects.filter(trace=kept).values_list("span_id", flat=True)) == ["b" * 16]
        linked = Trace.objects.create(trace_id="a" * 32, agent_id=other.pk, started_at=T0)
        Step.objects.create(trace=linked, span_id="b" * 16, name="root", started_at=T0)  # same span id, own trace
        with pytest.raises(IntegrityError), transaction.atomic():
            Trace.objects.create(trace_id="a" * 32, agent_id=victim.pk, started_at=T0)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
