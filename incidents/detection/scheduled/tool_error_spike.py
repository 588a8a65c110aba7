"""Tool error rate (errors and HTTP 4xx answers), last hour against the 7-day baseline."""

from datetime import datetime

from agents.models import Agent
from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled._sql import FROM_STEPS, bounds, fetchall

NAME = "tool_error_spike"
# An error status, or a 4xx code in the error message / at the start of the output / as a status field.
IS_ERROR = r"""(s.status = 'error'
    OR s.error_message ~ '(^|[^0-9.])4[0-9]{2}([^0-9]|$)'
    OR s.output ~* '^\W*(HTTP[/0-9. ]*)?4[0-9]{2}\M|"status(_code)?"\s*:\s*4[0-9]{2}\M')"""


@detector(
    name=NAME,
    kind="scheduled",
    defaults={"baseline_days": 7, "window_minutes": 60, "factor": 3, "min_errors": 5, "min_baseline_rate": 0.02},
    rule=Rule.NOTIFY,
    failure_class="tool-misuse",
)
def run(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Fire when window error rate ≥ ``factor`` x max(baseline rate, ``min_baseline_rate``), errors ≥ ``min_errors``."""
    params = bounds(agent_id=agent.pk, now=now, settings=settings)
    [(wn, we, bn, be, sample)] = fetchall(
        f"""SELECT count(*) FILTER (WHERE s.started_at >= %(wstart)s),
                   count(*) FILTER (WHERE s.started_at >= %(wstart)s AND {IS_ERROR}),
                   count(*) FILTER (WHERE s.started_at < %(wstart)s),
                   count(*) FILTER (WHERE s.started_at < %(wstart)s AND {IS_ERROR}),
                   max(s.trace_id) FILTER (WHERE s.started_at >= %(wstart)s AND {IS_ERROR})
            {FROM_STEPS} AND s.kind = 'tool'""",
        params,
    )
    if we < settings["min_errors"]:
        return []
    rate_w, rate_b = we / wn, (be / bn if bn else 0.0)
    if rate_w < settings["factor"] * max(rate_b, settings["min_baseline_rate"]):
        return []
    return [
        Finding(
            detector=NAME,
            agent_id=agent.pk,
            key="spike",
            title=f"{agent.slug}: tool errors {rate_w:.0%} in the last {settings['window_minutes']} min "
            f"({we}/{wn}; baseline {rate_b:.1%})",
            trace_id=sample,
            severity="SEV2",
            details={
                "window_errors": we,
                "window_calls": wn,
                "baseline_errors": be,
                "baseline_calls": bn,
                "window_rate": round(rate_w, 4),
                "baseline_rate": round(rate_b, 4),
            },
        )
    ]
