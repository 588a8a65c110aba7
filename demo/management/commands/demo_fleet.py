"""Load the demo fleet: simulated agents, a day of their traffic and one example of each failure, then
four months of past incidents replayed through the services (``--no-history`` to skip them)."""

from argparse import ArgumentTypeError
from datetime import UTC, datetime

from django.core.management.base import BaseCommand

from demo.fleet import fleet_load
from demo.fleet.history import history_load
from traces.selectors.runs import trace_exists


def _anchor(value: str) -> datetime:
    try:
        anchor = datetime.fromisoformat(value)
    except ValueError as e:
        raise ArgumentTypeError(f"not an ISO date and time: {value!r}") from e
    return anchor if anchor.tzinfo else anchor.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Register the demo agents and ingest about 3,000 traces of the 24 hours before now, with one example "
        "of each failure class, then about four months of past incidents (post-mortems, action items, eval "
        "runs) through the services. Loading the same seed and anchor again stores nothing new."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
        parser.add_argument(
            "--anchor",
            type=_anchor,
            help="ISO time the traffic ends at, UTC unless given (default: now, to the minute)",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="load only when no traces are stored yet (what `make run` uses, so restarts do not pile up fleets)",
        )
        parser.add_argument(
            "--no-history",
            action="store_true",
            help="skip the past incidents (by default about 33 over the last 120 days are replayed once per seed)",
        )

    def handle(
        self, *args, seed: int, anchor: datetime | None, if_empty: bool = False, no_history: bool = False, **options
    ):
        if if_empty and trace_exists():
            self.stdout.write("Demo fleet: traces are already stored, nothing loaded (run demo_fleet to add more).")
            return
        s = fleet_load(seed=seed, anchor=anchor)
        out = self.stdout.write
        out(f"Demo fleet, seed {s.seed}, traffic up to {s.anchor.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        agents = len(s.agents_registered) + len(s.agents_existing)
        out(f"  agents  {agents}: {len(s.agents_registered)} registered, {len(s.agents_existing)} already there")
        out(f"  traces  {s.traces:,}")
        out(f"  spans   {s.spans:,} sent, {s.spans_stored:,} stored")
        if s.already_loaded:
            out("  Nothing new stored: this seed and anchor were already loaded (ingest is idempotent).")
        out("  failure examples:")
        for f in s.failures:
            out(f"    {f.key} ({f.agent}): {f.description}")
            for trace_id in f.trace_ids:
                out(f"      /traces/{trace_id}/?agent={f.agent}")
        out(f"  fleet loaded in {s.elapsed_seconds:.1f} s")
        if not no_history:
            self._history(seed=seed, anchor=s.anchor)
        out(self.style.SUCCESS("Done"))

    def _history(self, *, seed: int, anchor: datetime) -> None:
        out = self.stdout.write
        h = history_load(seed=seed, anchor=anchor)
        if h.already_loaded:
            out(f"Demo history, seed {seed}: already loaded (its trajectories are stored), nothing added.")
            return
        out(f"Demo history, seed {seed}: {h.incidents} past incidents over the last 120 days")
        out(f"  {h.closed} closed, {h.open_work} still open or in post-mortem")
        out(f"  {h.traces} trajectories ({h.spans_stored:,} spans), {h.audit_rows} gate audit rows")
        out(f"  {h.postmortems_published} post-mortems published, {h.action_items} action items")
        out(f"  {h.eval_cases} eval cases, {h.eval_runs} eval runs")
        out(f"  history loaded in {h.elapsed_seconds:.1f} s")
