"""``fleet_load``: register the demo agents and send the plan's batches through ingest."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection

from agents.selectors import agent_list
from agents.services import agent_register
from core.actors import Actor
from demo.fleet.failures import FailureExample
from demo.fleet.plan import fleet_generate
from traces.models import Step, Trace, TraceStatus
from traces.services import trace_golden_set, trace_ingest

DEMO_ACTOR = Actor.system("demo_fleet")


@dataclass(frozen=True)
class FleetSummary:
    seed: int
    anchor: datetime
    agents_registered: list[str]
    agents_existing: list[str]
    traces: int
    spans: int
    spans_stored: int
    failures: list[FailureExample]
    elapsed_seconds: float

    @property
    def already_loaded(self) -> bool:
        return self.spans_stored == 0


def fleet_load(*, seed: int = 7, anchor: datetime | None = None) -> FleetSummary:
    """Register the demo agents (skipping slugs that exist) and ingest the fleet's traffic.

    ``anchor`` defaults to now, floored to the minute. Each batch goes through
    ``traces.services.trace_ingest`` in its own transaction, so ``spans_ingested`` fires per batch as
    for real traffic; a second load of the same seed and anchor stores nothing (``already_loaded``).
    Raises ValueError for a naive anchor; ingest errors propagate (batches already stored stay).
    """
    started = time.perf_counter()
    if anchor is None:
        anchor = datetime.now(UTC).replace(second=0, microsecond=0)
    plan = fleet_generate(seed=seed, anchor=anchor)
    existing = set(agent_list().filter(slug__in=[a.slug for a in plan.agents]).values_list("slug", flat=True))
    registered = []
    for spec in plan.agents:
        if spec.slug not in existing:
            agent_register(actor=DEMO_ACTOR, **spec.register_kwargs())
            registered.append(spec.slug)
    stored = sum(trace_ingest(spans=batch).stored for batch in plan.batches)
    if stored:
        _analyze(Trace, Step)
        golden_runs_mark([spec.slug for spec in plan.agents])
    return FleetSummary(
        seed=seed,
        anchor=anchor,
        agents_registered=registered,
        agents_existing=sorted(existing),
        traces=len(plan.trace_ids),
        spans=plan.span_count,
        spans_stored=stored,
        failures=plan.failures,
        elapsed_seconds=time.perf_counter() - started,
    )


def golden_runs_mark(agents: list[str]) -> int:
    """Give each demo agent's input classes a golden run, so the golden diff has something to compare with:
    the most recent run of the class that ended ok, was not flagged and made no error. Returns how many."""
    marked = 0
    newest = (
        Trace.objects.filter(agent__slug__in=agents, status=TraceStatus.OK, flagged_span_id="", error_count=0)
        .exclude(input_class="")
        .order_by("agent_id", "input_class", "-started_at")
        .distinct("agent_id", "input_class")
    )
    for trace in newest:
        if not Trace.objects.filter(agent_id=trace.agent_id, input_class=trace.input_class, is_golden=True).exists():
            trace_golden_set(trace=trace, actor=DEMO_ACTOR)
            marked += 1
    return marked


def _analyze(*models: type[Trace] | type[Step]) -> None:
    """Refresh the planner's statistics after a bulk load.

    Until autovacuum gets to them, the tables keep the statistics of before the load (often "empty",
    when autovacuum last ran after a delete), and the detectors' joins over steps then get nested-loop
    plans that take minutes instead of milliseconds. Inside a transaction ANALYZE also counts its own
    uncommitted rows, so a caller that loads in a transaction is covered too.
    """
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")
