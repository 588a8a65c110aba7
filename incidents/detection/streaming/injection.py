"""Prompt injection: tool or retrieved content that carries instructions, followed by further tool calls."""

from django.db import connection

from incidents.detection.base import Finding, Rule, Thresholds, detector
from incidents.detection.streaming._steps import packed, steps_of
from incidents.detection.streaming._text import INJECTION_RE
from traces.models import Trace

NAME = "injection"


@detector(name=NAME, kind="streaming", defaults={}, rule=Rule.PAUSE, failure_class="policy-bypass")
def run(*, traces: list[Trace], settings: Thresholds) -> list[Finding]:
    """A tool or retrieval step whose output reads like instructions, with a tool call after it in the run."""
    by_pk = {t.pk: t for t in traces}
    rows = [row for t in traces if packed(t) for row in _instructing_steps(t)]
    unpacked = [t.pk for t in traces if not packed(t)]
    if unpacked:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT s.trace_id, s.span_id, s.tool_name, ("
                "  SELECT n.tool_name FROM traces_step n WHERE n.trace_id = s.trace_id AND n.kind = 'tool'"
                "  AND n.started_at > s.started_at ORDER BY n.started_at LIMIT 1) "
                "FROM traces_step s WHERE s.trace_id = ANY(%s) AND s.kind IN ('tool', 'retrieval') "
                "AND s.output ~* %s ORDER BY s.trace_id, s.started_at",
                [unpacked, INJECTION_RE],
            )
            rows.extend(cur.fetchall())
    findings, seen = [], set()
    for trace_pk, span_id, source_tool, next_tool in rows:
        if next_tool is None or trace_pk in seen:
            continue
        seen.add(trace_pk)
        trace = by_pk[trace_pk]
        findings.append(
            Finding(
                detector=NAME,
                agent_id=trace.agent_id,
                key=str(trace_pk),
                title=f"{trace.agent.slug}: instructions found in {source_tool or 'retrieved'} output, "
                f"then {next_tool} was called",
                trace_id=trace_pk,
                span_id=span_id,
                severity="SEV1",
                details={"trace_id": trace.trace_id, "source": source_tool, "next_tool": next_tool},
            )
        )
    return findings


def _instructing_steps(trace: Trace) -> list[tuple[int, str, str, str | None]]:
    """The SQL's rows for a trace whose steps ingest packed (``instructs``: ``_text.output_instructs``)."""
    steps = steps_of(trace)
    rows = []
    for i, step in enumerate(steps):
        if step.kind in ("tool", "retrieval") and step.instructs:  # type: ignore[attr-defined]
            after = (n.tool_name for n in steps[i + 1 :] if n.kind == "tool" and n.started_at > step.started_at)
            rows.append((trace.pk, step.span_id, step.tool_name, next(after, None)))
    return rows
