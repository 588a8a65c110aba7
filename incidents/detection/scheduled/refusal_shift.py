"""Share of LLM outputs that are refusals, last hour against the 7-day baseline."""

from datetime import datetime

from agents.models import Agent
from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled._sql import FROM_STEPS, bounds, fetchall

NAME = "refusal_shift"
_APOS = "['’]"
# Case-insensitive POSIX regex matched in PostgreSQL (``~*``) against the start of the output.
REFUSAL_RE = (
    rf"^\W*(i can{_APOS}?t|i cannot|i{_APOS}m sorry,? but i can{_APOS}?t|i am sorry,? but i can(no|{_APOS})t"
    rf"|i am unable to|i{_APOS}m unable to|i{_APOS}m not able to|i won{_APOS}t be able to help)"
    r"( help| assist| do that| comply| provide| support|\M)"
)


@detector(
    name=NAME,
    kind="scheduled",
    defaults={"baseline_days": 7, "window_minutes": 60, "delta": 0.1, "min_refusals": 5, "min_samples": 5},
    rule=Rule.NOTIFY,
    failure_class="policy-bypass",
)
def run(*, agent: Agent, settings: Thresholds, now: datetime) -> list[Finding]:
    """Fire when the window's refusal share ≥ baseline share + ``delta`` and refusals ≥ ``min_refusals``."""
    params = bounds(agent_id=agent.pk, now=now, settings=settings) | {"re": REFUSAL_RE}
    [(wn, wr, bn, br, sample)] = fetchall(
        f"""SELECT count(*) FILTER (WHERE s.started_at >= %(wstart)s),
                   count(*) FILTER (WHERE s.started_at >= %(wstart)s AND s.output ~* %(re)s),
                   count(*) FILTER (WHERE s.started_at < %(wstart)s),
                   count(*) FILTER (WHERE s.started_at < %(wstart)s AND s.output ~* %(re)s),
                   max(s.trace_id) FILTER (WHERE s.started_at >= %(wstart)s AND s.output ~* %(re)s)
            {FROM_STEPS} AND s.kind = 'llm'""",
        params,
    )
    if wn < settings["min_samples"] or wr < settings["min_refusals"]:
        return []
    share_w, share_b = wr / wn, (br / bn if bn else 0.0)
    if share_w < share_b + settings["delta"]:
        return []
    return [
        Finding(
            detector=NAME,
            agent_id=agent.pk,
            key="shift",
            title=f"{agent.slug}: {wr} refusals in the last {settings['window_minutes']} min "
            f"({share_w:.0%} of LLM outputs, baseline {share_b:.0%})",
            trace_id=sample,
            severity="SEV2",
            details={
                "window_refusals": wr,
                "window_outputs": wn,
                "baseline_refusals": br,
                "baseline_outputs": bn,
                "window_share": round(share_w, 4),
                "baseline_share": round(share_b, 4),
            },
        )
    ]
