"""Safety / policy: a burst of refusals from one agent within minutes (in the traffic's own time)."""

from django.db import connection

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.scheduled.rollup import REFUSAL_RE
from incidents.detection.streaming._steps import packed, steps_of
from traces.models import Trace

NAME = "refusal_burst"


@detector(
    name=NAME,
    kind="streaming",
    defaults={"window_minutes": 15, "min_refusals": 5},
    rule=Rule.NOTIFY,
    failure_class="policy-bypass",
)
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """A refusing trace in the batch preceded, within ``window_minutes`` of its start, by at least
    ``min_refusals`` refusals of the same agent (its own included).

    Measured against the traces' own start times, so replayed or delayed traffic is judged as it happened.
    """
    by_pk = {t.pk: t for t in traces}
    # Traces ingest packed say which of their LLM outputs refuse (``refuses``); the others are looked at here.
    refusing = [t.pk for t in traces if packed(t) and any(s.kind == "llm" and s.refuses for s in steps_of(t))]  # type: ignore[attr-defined]
    unpacked = [t.pk for t in traces if not packed(t)]
    if not refusing and not unpacked:
        return []
    with connection.cursor() as cur:
        cur.execute(
            "SELECT t.id, ("
            "  SELECT count(*) FROM traces_step s2 JOIN traces_trace t2 ON t2.id = s2.trace_id"
            "  WHERE t2.agent_id = t.agent_id AND t2.started_at BETWEEN t.started_at - make_interval(mins => %s)"
            "  AND t.started_at AND s2.kind = 'llm' AND s2.output ~* %s) "
            "FROM traces_trace t WHERE t.id = ANY(%s) OR (t.id = ANY(%s) AND EXISTS ("
            "  SELECT 1 FROM traces_step s WHERE s.trace_id = t.id AND s.kind = 'llm' AND s.output ~* %s)) "
            "ORDER BY t.started_at",
            [settings["window_minutes"], REFUSAL_RE, refusing, unpacked, REFUSAL_RE],
        )
        rows = cur.fetchall()
    findings, seen = [], set()
    for trace_pk, count in rows:
        trace = by_pk[trace_pk]
        key = f"{trace.agent_id}:{trace.started_at:%Y-%m-%dT%H}"  # one alert per agent and hour of burst
        if count < settings["min_refusals"] or key in seen:
            continue
        seen.add(key)
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=key,
                title=f"{trace.agent.slug}: {count} refusals within {settings['window_minutes']} minutes",
                trace_id=trace_pk,
                severity="SEV2",
                details={"trace_id": trace.trace_id, "refusals": count, "window_minutes": settings["window_minutes"]},
            )
        )
    return findings
