"""The demo fleet: nine simulated agents and a day of their traffic, with one example of each failure.

``fleet_generate`` is pure: for a seed and an anchor time it returns the same agents and the same
span batches every time. Content comes from ``random.Random(seed)``; trace, span and session ids
come from a second generator seeded from the seed *and* the anchor, so loading the same seed at a
later anchor adds a separate day of traffic instead of rewriting the timestamps of the first.

``fleet_load`` registers the agents and sends the batches through ``traces.services.trace_ingest``,
the path real spans take; ingest is idempotent, so loading the same plan twice stores nothing new.
"""

from demo.fleet.agents import AGENTS, AGENTS_BY_SLUG, AgentSpec
from demo.fleet.failures import FAILURES, FailureExample
from demo.fleet.load import DEMO_ACTOR, FleetSummary, fleet_load
from demo.fleet.plan import BATCH_SPANS, TARGET_TRACES, FleetPlan, fleet_generate

__all__ = [
    "AGENTS",
    "AGENTS_BY_SLUG",
    "BATCH_SPANS",
    "DEMO_ACTOR",
    "FAILURES",
    "TARGET_TRACES",
    "AgentSpec",
    "FailureExample",
    "FleetPlan",
    "FleetSummary",
    "fleet_generate",
    "fleet_load",
]
