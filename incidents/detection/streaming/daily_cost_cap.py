"""Daily cost cap: the agent's spend on runs started this UTC day is over its ``daily_cost_cap``.

Checked after every ingested batch (streaming, for the batch's agents) and by beat (the scheduled
sweep, for an agent whose batch detection was late). Both raise the same alert: its key is the UTC
day and the cap, so the agent is paused once per day and cap. A responder who resumes it the same
day is not overruled (the resume warns while the cap is still crossed); raising the cap and crossing
the new one pauses it again.
"""

from datetime import datetime
from decimal import Decimal

from agents.models import Agent
from incidents.detection.base import Finding, Rule, Thresholds, detector
from traces.models import Trace
from traces.selectors.spend import agents_spend_today, utc_day_start

NAME = "daily_cost_cap"
SWEEP = "daily_cost_cap_sweep"


def _finding(agent: Agent, spend: Decimal, trace_id: int | None, at: datetime | None) -> Finding:
    cap = agent.daily_cost_cap
    assert cap is not None
    day = utc_day_start(at).date().isoformat()
    return Finding(
        detector=NAME,
        agent_id=agent.pk,
        key=f"{day}:{cap}",
        title=f"Daily cost cap crossed: spent ${spend:,.2f} today (UTC {day}), over the ${cap:,.2f} cap",
        trace_id=trace_id,
        details={"day": day, "spend": str(spend), "daily_cost_cap": str(cap)},
    )


@detector(name=NAME, kind="streaming", defaults={}, rule=Rule.PAUSE, failure_class="runaway-loop")
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """The batch's agents with a daily cost cap: pause when the cost of their runs started this UTC day passes it."""
    capped = {t.agent_id: t for t in traces if t.agent.daily_cost_cap is not None}
    if not capped:
        return []
    spend = agents_spend_today(capped)
    return [
        _finding(trace.agent, spend[pk], trace.pk, None)
        for pk, trace in capped.items()
        if spend[pk] > trace.agent.daily_cost_cap  # type: ignore[operator]
    ]


@detector(name=SWEEP, kind="scheduled", defaults={}, rule=Rule.PAUSE, failure_class="runaway-loop")
def sweep(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Beat's copy of ``daily_cost_cap`` for one agent (same alert, same once-a-day pause)."""
    if agent.daily_cost_cap is None:
        return []
    spend = agents_spend_today([agent.pk], at=now)[agent.pk]
    if spend <= agent.daily_cost_cap:
        return []
    last = Trace.objects.filter(agent=agent, started_at__gte=utc_day_start(now)).order_by("-started_at").first()
    return [_finding(agent, spend, last.pk if last else None, now)]
