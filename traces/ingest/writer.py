"""Write a validated batch of spans: PostgreSQL COPY into temp tables, then set-based upserts.

One call runs inside the caller's transaction. Steps are inserted with
ON CONFLICT DO NOTHING on (trace, span id), and trace totals are added from
the rows actually inserted, so a span sent twice is stored and counted once.
"""

from dataclasses import dataclass

import orjson
from django.db import connection

from traces.ingest.spans import Span

_TMP_DDL = """
CREATE TEMP TABLE IF NOT EXISTS fb_ingest_traces (
    trace_key varchar(32), agent_id bigint, session_id text, user_id text, input_class text,
    root_input text, root_output text, status varchar(10), model_version text, prompt_version text,
    started_at timestamptz, ended_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fb_ingest_steps (
    trace_key varchar(32), span_id varchar(16), parent_span_id varchar(16), kind varchar(10), name text,
    agent_name text, tool_name text, tool_arguments jsonb, action_hash varchar(16), input text, output text,
    model text, tokens_in integer, tokens_out integer, cost numeric(14,6), finish_reason text,
    status varchar(5), error_message text, started_at timestamptz, ended_at timestamptz, attributes jsonb
) ON COMMIT DELETE ROWS;
DELETE FROM fb_ingest_traces;
DELETE FROM fb_ingest_steps;
"""

_UPSERT_TRACES = """
INSERT INTO traces_trace (
    trace_id, agent_id, session_id, user_id, input_class, root_input, root_output, status,
    model_version, prompt_version, started_at, ended_at, tokens_in, tokens_out, cost,
    step_count, tool_call_count, error_count, is_golden, flagged_span_id, flag_note, flagged_by, updated_at
)
SELECT trace_key, agent_id, session_id, user_id, input_class, root_input, root_output, status,
       model_version, prompt_version, started_at, ended_at, 0, 0, 0, 0, 0, 0, false, '', '', '', now()
FROM fb_ingest_traces
ON CONFLICT (trace_id) DO UPDATE SET
    session_id = CASE WHEN traces_trace.session_id = '' THEN EXCLUDED.session_id ELSE traces_trace.session_id END,
    user_id = CASE WHEN traces_trace.user_id = '' THEN EXCLUDED.user_id ELSE traces_trace.user_id END,
    input_class = CASE WHEN traces_trace.input_class = '' THEN EXCLUDED.input_class
                       ELSE traces_trace.input_class END,
    model_version = CASE WHEN traces_trace.model_version = '' THEN EXCLUDED.model_version
                         ELSE traces_trace.model_version END,
    prompt_version = CASE WHEN traces_trace.prompt_version = '' THEN EXCLUDED.prompt_version
                          ELSE traces_trace.prompt_version END,
    root_input = CASE WHEN EXCLUDED.root_input <> '' THEN EXCLUDED.root_input ELSE traces_trace.root_input END,
    root_output = CASE WHEN EXCLUDED.root_output <> '' THEN EXCLUDED.root_output ELSE traces_trace.root_output END,
    status = CASE WHEN EXCLUDED.status <> 'running' AND traces_trace.status <> 'killed' THEN EXCLUDED.status
                  ELSE traces_trace.status END,
    started_at = LEAST(traces_trace.started_at, EXCLUDED.started_at),
    ended_at = COALESCE(EXCLUDED.ended_at, traces_trace.ended_at),
    updated_at = now()
"""

_INSERT_STEPS = """
WITH ins AS (
    INSERT INTO traces_step (
        trace_id, span_id, parent_span_id, kind, name, agent_name, tool_name, tool_arguments, action_hash,
        input, output, model, tokens_in, tokens_out, cost, finish_reason, status, error_message,
        started_at, ended_at, attributes
    )
    SELECT t.id, s.span_id, s.parent_span_id, s.kind, s.name, s.agent_name, s.tool_name, s.tool_arguments,
           s.action_hash, s.input, s.output, s.model, s.tokens_in, s.tokens_out, s.cost, s.finish_reason,
           s.status, s.error_message, s.started_at, s.ended_at, s.attributes
    FROM fb_ingest_steps s JOIN traces_trace t ON t.trace_id = s.trace_key
    ON CONFLICT (trace_id, span_id) DO NOTHING
    RETURNING trace_id, tokens_in, tokens_out, cost, kind, status
), agg AS (
    SELECT trace_id, count(*) AS n, sum(tokens_in) AS ti, sum(tokens_out) AS tout, sum(cost) AS c,
           count(*) FILTER (WHERE kind = 'tool') AS tools, count(*) FILTER (WHERE status = 'error') AS errors
    FROM ins GROUP BY trace_id
)
UPDATE traces_trace t SET
    step_count = t.step_count + agg.n, tokens_in = t.tokens_in + agg.ti, tokens_out = t.tokens_out + agg.tout,
    cost = t.cost + agg.c, tool_call_count = t.tool_call_count + agg.tools, error_count = t.error_count + agg.errors
FROM agg WHERE t.id = agg.trace_id
RETURNING t.id, t.trace_id, agg.n
"""

TRACE_COLUMNS = (
    "trace_key, agent_id, session_id, user_id, input_class, root_input, root_output, status, "
    "model_version, prompt_version, started_at, ended_at"
)
STEP_COLUMNS = (
    "trace_key, span_id, parent_span_id, kind, name, agent_name, tool_name, tool_arguments, action_hash, "
    "input, output, model, tokens_in, tokens_out, cost, finish_reason, status, error_message, "
    "started_at, ended_at, attributes"
)


@dataclass
class WriteResult:
    stored: int
    trace_ids: dict[str, int]  # hex trace id -> Trace.pk, for traces that gained steps


def _trace_rows(spans: list[Span], agent_ids: dict[str, int]):
    """One row per trace in the batch, folded from its spans."""
    traces: dict[str, dict] = {}
    for s in spans:
        row = traces.get(s.trace_id)
        if row is None:
            row = traces[s.trace_id] = {
                "agent_id": agent_ids[s.agent],
                "session_id": "",
                "user_id": "",
                "input_class": "",
                "root_input": "",
                "root_output": "",
                "status": "running",
                "model_version": "",
                "prompt_version": "",
                "started_at": s.start,
                "ended_at": None,
            }
        if s.start < row["started_at"]:
            row["started_at"] = s.start
        for name in ("session_id", "user_id", "input_class", "prompt_version", "model_version"):
            if not row[name] and getattr(s, name):
                row[name] = getattr(s, name)
        if not row["model_version"] and s.kind == "llm" and s.model:
            row["model_version"] = s.model
        if s.is_root:
            row["root_input"] = s.input
            row["root_output"] = s.output
            if s.end is not None:
                row["ended_at"] = s.end
                row["status"] = "error" if s.status == "error" else "ok"
        if s.trace_status:
            row["status"] = s.trace_status
    for key, row in traces.items():
        yield (
            key,
            row["agent_id"],
            row["session_id"],
            row["user_id"],
            row["input_class"],
            row["root_input"],
            row["root_output"],
            row["status"],
            row["model_version"],
            row["prompt_version"],
            row["started_at"],
            row["ended_at"],
        )


def _json(value) -> str | None:
    if value is None:
        return None
    text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    # jsonb cannot hold NUL (escaped by the encoder as \u0000); model output sometimes has it.
    return text.replace("\\u0000", "") if "\\u0000" in text else text


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; model output sometimes does.
    return text.replace("\x00", "") if "\x00" in text else text


def write_spans(spans: list[Span], agent_ids: dict[str, int]) -> WriteResult:
    """Write validated, normalized spans. Must run inside a transaction."""
    with connection.cursor() as django_cursor:
        cur = django_cursor.cursor
        cur.execute(_TMP_DDL)
        with cur.copy(f"COPY fb_ingest_traces ({TRACE_COLUMNS}) FROM STDIN") as copy:
            for row in _trace_rows(spans, agent_ids):
                copy.write_row(row)
        with cur.copy(f"COPY fb_ingest_steps ({STEP_COLUMNS}) FROM STDIN") as copy:
            for s in spans:
                copy.write_row(
                    (
                        s.trace_id,
                        s.span_id,
                        s.parent_span_id,
                        s.kind,
                        _clean(s.name),
                        s.agent_name,
                        s.tool_name,
                        _json(s.tool_arguments),
                        s.action_hash,
                        _clean(s.input),
                        _clean(s.output),
                        s.model,
                        s.tokens_in,
                        s.tokens_out,
                        s.cost,
                        s.finish_reason,
                        s.status,
                        _clean(s.error_message),
                        s.start,
                        s.end,
                        _json(s.attributes) or "{}",
                    )
                )
        cur.execute(_UPSERT_TRACES)
        cur.execute(_INSERT_STEPS)
        rows = cur.fetchall()
    return WriteResult(stored=sum(r[2] for r in rows), trace_ids={r[1]: r[0] for r in rows})
