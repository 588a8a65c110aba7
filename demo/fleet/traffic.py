"""The healthy traffic: every agent's scenario builders, how often each runs, and the odd fatal tool error."""

from demo.fleet.runs import _FATAL, _Trace
from demo.fleet.traffic_customer import _CustomerTraffic
from demo.fleet.traffic_internal import _InternalTraffic


class _Gen(_CustomerTraffic, _InternalTraffic):
    """Scenario builders for each agent; all content randomness comes from ``rng``."""


# Share of healthy traffic by builder (the ops pair makes two traces).
_TRAFFIC = {
    "support_triage": 30,
    "refund_agent": 11,
    "sql_analyst": 9,
    "code_reviewer": 8,
    "research_assistant": 8,
    "invoice_extractor": 13,
    "ops_pair": 6,
    "onboarding_guide": 9,
}


def _healthy(gen: _Gen, builder: str, user: str) -> list[_Trace]:
    made = getattr(gen, builder)(user)
    traces = made if isinstance(made, list) else [made]
    for t in traces:
        t.user_id = user
    r = gen.rng
    # Now and then a run dies on a tool error it cannot recover from.
    tools = [i for i, s in enumerate(traces[0].steps) if s["kind"] == "tool"]
    if len(traces) == 1 and tools and r.random() < 0.012:
        t, i = traces[0], r.choice(tools)
        t.steps = [*t.steps[:i], t.steps[i] | {"output": "", "status": "error", "error": r.choice(_FATAL)}]
        t.status, t.root_output = "error", ""
    return traces
