"""Write a validated batch of spans to PostgreSQL with COPY.

One call runs inside the caller's transaction and is idempotent on
(trace, span id, start): a span sent twice is stored and counted once (the steps
table is partitioned by start time, and its unique key carries it). A trace is
(agent, trace id): spans of one agent never land in, or count towards, another
agent's trajectory of the same trace id, and a span id is unique per trajectory.

Fast path (the usual case): upsert the batch's traces, carrying the totals of
the batch's spans for traces that are new; for traces that already existed,
look up which of the batch's spans are stored already; COPY only the new
spans straight into ``traces_step`` inside a savepoint; add their totals to
the traces that existed. If a concurrent batch stored one of the same spans in
between (a unique violation), the savepoint is rolled back and the batch takes
the conflict-safe path: COPY into a temp table, then INSERT … ON CONFLICT DO
NOTHING, with totals added from the rows actually inserted.

Steps go in COPY's binary format (``_copy_steps``): PostgreSQL reads numbers, times and JSON without parsing
their text, and the client does not escape every value; the values stored are the same.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from django.db import connection, transaction
from psycopg import Copy, Cursor
from psycopg.adapt import Dumper
from psycopg.errors import UniqueViolation
from psycopg.postgres import types as pg_types
from psycopg.pq import Format
from psycopg.rows import TupleRow

from traces.ingest.payloads import Payload
from traces.ingest.spans import JsonValue, Span

_TMP_TRACES_DDL = """
CREATE TEMP TABLE IF NOT EXISTS fb_ingest_traces (
    trace_key varchar(32), agent_id bigint, session_id text, user_id text, input_class text,
    root_input text, root_output text, status varchar(10), model_version text, prompt_version text,
    started_at timestamptz, ended_at timestamptz, tokens_in bigint, tokens_out bigint, cost numeric(14,6),
    step_count integer, tool_call_count integer, error_count integer
) ON COMMIT DELETE ROWS;
DELETE FROM fb_ingest_traces;
"""

_TMP_STEPS_DDL = """
CREATE TEMP TABLE IF NOT EXISTS fb_ingest_steps (
    trace_key varchar(32), agent_id bigint, span_id varchar(16), parent_span_id varchar(16), kind varchar(10),
    name text, agent_name text, tool_name text, tool_arguments jsonb, action_hash varchar(16), input text, output text,
    model text, tokens_in integer, tokens_out integer, cost numeric(14,6), finish_reason text,
    status varchar(5), error_message text, started_at timestamptz, ended_at timestamptz, attributes jsonb
) ON COMMIT DELETE ROWS;
DELETE FROM fb_ingest_steps;
"""

# New traces are inserted with the batch's totals; existing ones keep theirs (added later from new spans only).
_UPSERT_TRACES = """
INSERT INTO traces_trace (
    trace_id, agent_id, session_id, user_id, input_class, root_input, root_output, status,
    model_version, prompt_version, started_at, ended_at, tokens_in, tokens_out, cost,
    step_count, tool_call_count, error_count, is_golden, flagged_span_id, flag_note, flagged_by, updated_at
)
SELECT trace_key, agent_id, session_id, user_id, input_class, root_input, root_output, status,
       model_version, prompt_version, started_at, ended_at, {totals}, false, '', '', '', now()
FROM fb_ingest_traces
-- A fixed lock order: two batches sharing traces wait for each other instead of deadlocking.
ORDER BY trace_key, agent_id
ON CONFLICT (trace_id, agent_id) DO UPDATE SET
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
RETURNING id, agent_id, trace_id, (xmax = 0) AS inserted
"""
_BATCH_TOTALS = "tokens_in, tokens_out, cost, step_count, tool_call_count, error_count"

_EXISTING_SPANS = """
SELECT s.trace_id, s.span_id
FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[]) AS k(trace_pk, span_id, started_at)
JOIN traces_step s ON s.trace_id = k.trace_pk AND s.span_id = k.span_id AND s.started_at = k.started_at
"""

_ADD_TOTALS = """
UPDATE traces_trace t SET
    tokens_in = t.tokens_in + v.ti, tokens_out = t.tokens_out + v.tout, cost = t.cost + v.c,
    step_count = t.step_count + v.n, tool_call_count = t.tool_call_count + v.tools,
    error_count = t.error_count + v.errors
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::numeric[], %s::int[], %s::int[], %s::int[])
     AS v(id, ti, tout, c, n, tools, errors)
WHERE t.id = v.id
"""

_INSERT_FROM_TEMP = """
WITH ins AS (
    INSERT INTO traces_step (
        trace_id, span_id, parent_span_id, kind, name, agent_name, tool_name, tool_arguments, action_hash,
        input, output, model, tokens_in, tokens_out, cost, finish_reason, status, error_message,
        started_at, ended_at, attributes
    )
    SELECT t.id, s.span_id, s.parent_span_id, s.kind, s.name, s.agent_name, s.tool_name, s.tool_arguments,
           s.action_hash, s.input, s.output, s.model, s.tokens_in, s.tokens_out, s.cost, s.finish_reason,
           s.status, s.error_message, s.started_at, s.ended_at, s.attributes
    FROM fb_ingest_steps s JOIN traces_trace t ON t.trace_id = s.trace_key AND t.agent_id = s.agent_id
    ON CONFLICT (trace_id, span_id, started_at) DO NOTHING
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
RETURNING t.id, t.agent_id, t.trace_id, agg.n
"""

# ON CONFLICT: a span sent again brings its payloads again; the first copy stays, as for the step.
_INSERT_PAYLOADS = """
INSERT INTO traces_steppayload (trace_id, span_id, field, started_at, content_type, size, data)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (trace_id, span_id, field) DO NOTHING
"""

TRACE_COLUMNS = (
    "trace_key, agent_id, session_id, user_id, input_class, root_input, root_output, status, "
    "model_version, prompt_version, started_at, ended_at, " + _BATCH_TOTALS
)
STEP_VALUES = (
    "span_id, parent_span_id, kind, name, agent_name, tool_name, tool_arguments, action_hash, "
    "input, output, model, tokens_in, tokens_out, cost, finish_reason, status, error_message, "
    "started_at, ended_at, attributes"
)
# The PostgreSQL types of STEP_VALUES, in order, for the binary COPY (traces_step's and fb_ingest_steps' columns).
STEP_TYPES = [
    "varchar", "varchar", "varchar", "varchar", "varchar", "varchar", "jsonb", "varchar",
    "text", "text", "varchar", "int4", "int4", "numeric", "varchar", "varchar", "text",
    "timestamptz", "timestamptz", "jsonb",
]  # fmt: skip


class _JsonbEncoded(Dumper):
    """JSON already encoded (UTF-8 bytes, ``_json``) as jsonb's binary input: the format version, then the text.

    Registered by oid only, on the writer's cursor: the COPY's jsonb columns take ``_json``'s bytes as they are
    (psycopg's own jsonb dumper would encode the value again)."""

    oid = pg_types["jsonb"].oid
    format = Format.BINARY

    def dump(self, obj: bytes) -> bytes:
        return b"\x01" + obj


def _copy_steps(copy: Copy, lead: list[str], rows: Iterable[tuple[object, ...]]) -> None:
    """Write step rows to a binary ``COPY … FROM STDIN`` (``lead`` types the columns before STEP_VALUES)."""
    copy.set_types([*lead, *STEP_TYPES])
    for row in rows:
        copy.write_row(row)


_COPY_STEPS = f"COPY traces_step (trace_id, {STEP_VALUES}) FROM STDIN (FORMAT BINARY)"
_COPY_TEMP_STEPS = f"COPY fb_ingest_steps (trace_key, agent_id, {STEP_VALUES}) FROM STDIN (FORMAT BINARY)"

# A trajectory: (Agent.pk, hex trace id).
TraceKey = tuple[int, str]


@dataclass
class WriteResult:
    stored: int
    trace_ids: dict[TraceKey, int]  # (agent pk, hex trace id) -> Trace.pk, for traces that gained steps
    # Traces this batch created, with every step they hold: the spans as written (Trace.pk -> spans in batch
    # order). Empty when a concurrent batch wrote some of the same spans (the conflict-safe path).
    created: dict[int, list[Span]] = field(default_factory=dict)


class _Totals:
    __slots__ = ("cost", "errors", "n", "tokens_in", "tokens_out", "tools")

    def __init__(self) -> None:
        self.tokens_in = self.tokens_out = self.n = self.tools = self.errors = 0
        self.cost = Decimal(0)

    def add(self, s: Span) -> None:
        self.tokens_in += s.tokens_in
        self.tokens_out += s.tokens_out
        self.cost += s.cost
        self.n += 1
        self.tools += s.kind == "tool"
        self.errors += s.status == "error"


def _unique(spans: list[Span]) -> list[Span]:
    """The batch without spans it repeats (the first copy wins, as ON CONFLICT DO NOTHING would)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for s in spans:
        key = (s.agent, s.trace_id, s.span_id)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _trace_rows(
    spans: list[Span], agent_ids: dict[str, int], totals: dict[TraceKey, _Totals]
) -> Iterator[tuple[object, ...]]:
    """One row per trajectory (agent, trace id) in the batch, folded from its spans."""
    traces: dict[TraceKey, dict[str, Any]] = {}
    for s in spans:
        key = (agent_ids[s.agent], s.trace_id)
        row = traces.get(key)
        if row is None:
            row = traces[key] = {
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
    for (agent_pk, hex_id), row in traces.items():
        t = totals[(agent_pk, hex_id)]
        yield (
            hex_id, agent_pk, row["session_id"], row["user_id"], row["input_class"], row["root_input"],
            row["root_output"], row["status"], row["model_version"], row["prompt_version"], row["started_at"],
            row["ended_at"], t.tokens_in, t.tokens_out, t.cost, t.n, t.tools, t.errors,
        )  # fmt: skip


# An escaped NUL: \u0000 after an even number of backslashes (escaped backslashes, kept), not after an odd one.
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def _json(value: JsonValue) -> bytes | None:
    if value is None:
        return None
    text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    # jsonb cannot hold NUL (escaped by the encoder as \u0000); model output sometimes has it. A string holding
    # a backslash and "u0000" is encoded \\u0000: that escape is not a NUL and stays (removing it broke the JSON).
    return _NUL_ESCAPE.sub(rb"\1", text) if b"\\u0000" in text else text


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; model output sometimes does.
    return text.replace("\x00", "") if "\x00" in text else text


def _step_values(s: Span) -> tuple[object, ...]:
    return (
        s.span_id, s.parent_span_id, s.kind, _clean(s.name), s.agent_name, s.tool_name, _json(s.tool_arguments),
        s.action_hash, _clean(s.input), _clean(s.output), s.model, s.tokens_in, s.tokens_out, s.cost,
        s.finish_reason, s.status, _clean(s.error_message), s.start, s.end, _json(s.attributes) or b"{}",
    )  # fmt: skip


# The values of a batch stored apart (traces.ingest.payloads), by span: (agent slug, trace id, span id).
SpanPayloads = dict[tuple[str, str, str], list[Payload]]


def _write_payloads(
    cur: Cursor[TupleRow], keyed: list[tuple[Span, TraceKey]], pk: dict[TraceKey, int], payloads: SpanPayloads
) -> None:
    if not payloads:  # the usual batch: nothing over APART_BYTES
        return
    rows = [
        (pk[key], s.span_id, p.field, s.start, p.content_type, p.size, p.data)
        for s, key in keyed
        for p in payloads.get((s.agent, s.trace_id, s.span_id), ())
    ]
    if rows:
        cur.executemany(_INSERT_PAYLOADS, rows)


def write_spans(spans: list[Span], agent_ids: dict[str, int], payloads: SpanPayloads | None = None) -> WriteResult:
    """Write validated, normalized spans (each with its owning agent resolved). Must run inside a transaction.

    ``payloads``: the values ``traces.ingest.payloads.payloads_split`` took out of these spans, written to
    ``traces_steppayload`` for the spans stored, in the same transaction.
    """
    payloads = payloads or {}
    spans = _unique(spans)
    # Each span with its trajectory, (agent pk, hex trace id), computed once.
    keyed = [(s, (agent_ids[s.agent], s.trace_id)) for s in spans]
    totals: dict[TraceKey, _Totals] = defaultdict(_Totals)
    for s, key in keyed:
        totals[key].add(s)
    with connection.cursor() as django_cursor:
        cur: Cursor[TupleRow] = django_cursor.cursor  # psycopg's own cursor under Django's wrapper: COPY
        cur.adapters.register_dumper(None, _JsonbEncoded)  # this cursor's adapters only (_copy_steps)
        cur.execute(_TMP_TRACES_DDL)
        with cur.copy(f"COPY fb_ingest_traces ({TRACE_COLUMNS}) FROM STDIN") as copy:
            for row in _trace_rows(spans, agent_ids, totals):
                copy.write_row(row)
        cur.execute(_UPSERT_TRACES.format(totals=_BATCH_TOTALS))
        upserted = cur.fetchall()
        pk: dict[TraceKey, int] = {(agent_pk, hex_id): trace_pk for trace_pk, agent_pk, hex_id, _ in upserted}
        existed = {(agent_pk, hex_id) for _, agent_pk, hex_id, inserted in upserted if not inserted}
        if existed:
            # Only traces that were already there can hold some of these spans; their totals are
            # added below from the spans that turn out to be new.
            probe = [(s, key) for s, key in keyed if key in existed]
            cur.execute(
                _EXISTING_SPANS,
                [[pk[key] for _, key in probe], [s.span_id for s, _ in probe], [s.start for s, _ in probe]],
            )
            stored_pks = {(trace_pk, span_id) for trace_pk, span_id in cur.fetchall()}
            keyed = [(s, key) for s, key in keyed if key not in existed or (pk[key], s.span_id) not in stored_pks]
        try:
            with transaction.atomic(), cur.copy(_COPY_STEPS) as copy:
                _copy_steps(copy, ["int8"], ((pk[key], *_step_values(s)) for s, key in keyed))
        except UniqueViolation:  # psycopg's own: the COPY ran on its cursor, not through Django's wrapper
            result = _write_conflict_safe(cur, keyed, pk, existed, totals)
            _write_payloads(cur, keyed, pk, payloads)
            return result
        _write_payloads(cur, keyed, pk, payloads)
        if existed:
            new_totals: dict[TraceKey, _Totals] = defaultdict(_Totals)
            for s, key in keyed:
                if key in existed:
                    new_totals[key].add(s)
            _add_totals(cur, {pk[k]: t for k, t in new_totals.items()})
    stored_traces = {key for _, key in keyed}
    created: dict[int, list[Span]] = defaultdict(list)
    for s, key in keyed:
        if key not in existed:
            created[pk[key]].append(s)
    return WriteResult(stored=len(keyed), trace_ids={k: pk[k] for k in stored_traces}, created=dict(created))


def _add_totals(cur: Cursor[TupleRow], by_pk: dict[int, _Totals]) -> None:
    if not by_pk:
        return
    ids = list(by_pk)
    t = [by_pk[i] for i in ids]
    cur.execute(
        _ADD_TOTALS,
        [ids, [x.tokens_in for x in t], [x.tokens_out for x in t], [x.cost for x in t], [x.n for x in t],
         [x.tools for x in t], [x.errors for x in t]],
    )  # fmt: skip


def _write_conflict_safe(
    cur: Cursor[TupleRow],
    keyed: list[tuple[Span, TraceKey]],
    pk: dict[TraceKey, int],
    existed: set[TraceKey],
    totals: dict[TraceKey, _Totals],
) -> WriteResult:
    """A concurrent batch stored some of the same spans: insert with ON CONFLICT DO NOTHING instead.

    New traces were inserted with the totals of all their batch spans; take those back
    and add the totals of the rows that this statement really inserts.
    """
    fresh = {pk[k]: t for k, t in totals.items() if k not in existed}
    if fresh:
        ids = list(fresh)
        t = [fresh[i] for i in ids]
        cur.execute(
            _ADD_TOTALS,
            [ids, [-x.tokens_in for x in t], [-x.tokens_out for x in t], [-x.cost for x in t], [-x.n for x in t],
             [-x.tools for x in t], [-x.errors for x in t]],
        )  # fmt: skip
    cur.execute(_TMP_STEPS_DDL)
    with cur.copy(_COPY_TEMP_STEPS) as copy:
        _copy_steps(
            copy, ["varchar", "int8"], ((hex_id, agent_pk, *_step_values(s)) for s, (agent_pk, hex_id) in keyed)
        )
    cur.execute(_INSERT_FROM_TEMP)
    rows = cur.fetchall()
    return WriteResult(stored=sum(r[3] for r in rows), trace_ids={(r[1], r[2]): r[0] for r in rows})
