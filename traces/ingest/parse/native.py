"""The native JSON batch: ``{"spans": [{...}, ...]}``, documented in the OpenAPI schema."""

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from traces.ingest.spans import IngestError, JsonValue, Span
from traces.models import StepKind, StepStatus, TraceStatus

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
KINDS = set(StepKind.values)
STATUSES = set(StepStatus.values)
TRACE_STATUSES = {TraceStatus.OK, TraceStatus.ERROR, TraceStatus.KILLED}
# The SDK mirrors these (firebreak_sdk.encode); tests/sdk/test_contract.py fails when the two drift apart.
# Input and output are bounded by the body limit alone (FIREBREAK_INGEST_MAX_BYTES' default): a value over
# 64 KiB is kept whole, compressed apart from the step row (traces.ingest.payloads).
LARGE_TEXT_LIMIT = 16 * 1024 * 1024
TEXT_LIMITS = {  # longest value, in characters, of each text field
    "name": 500,
    "agent": 63,
    "session_id": 200,
    "user_id": 200,
    "input_class": 200,
    "model": 200,
    "model_version": 200,
    "prompt_version": 200,
    "agent_name": 200,
    "tool_name": 200,
    "finish_reason": 50,
    "error_message": 10_000,
    "input": LARGE_TEXT_LIMIT,
    "output": LARGE_TEXT_LIMIT,
}
FIELDS = set(TEXT_LIMITS) | {  # every field a native span may have; any other is refused
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_time",
    "end_time",
    "kind",
    "status",
    "trace_status",
    "tool_arguments",
    "tokens_in",
    "tokens_out",
    "cost",
    "attributes",
}
COUNT_MAX = 2**31 - 1  # tokens_in, tokens_out
COST_BOUND = 10**8  # a cost is below this (USD): Step.cost is numeric(14, 6)


def parse_time(value: object, where: str) -> datetime:
    """ISO 8601 (with offset or Z) or seconds since the epoch."""
    if isinstance(value, bool):
        raise IngestError(f"{where}: must be an ISO 8601 time or epoch seconds")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise IngestError(f"{where}: epoch seconds out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise IngestError(f"{where}: not an ISO 8601 time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise IngestError(f"{where}: time needs a UTC offset or Z")
        return parsed
    raise IngestError(f"{where}: must be an ISO 8601 time or epoch seconds")


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COUNT_MAX:
        raise IngestError(f"{where}: must be a whole number from 0 to {COUNT_MAX}")
    return value


def parse_native(payload: JsonValue, *, max_spans: int) -> list[Span]:
    """Validate a whole native batch; raise IngestError naming the first bad field."""
    raw_spans = payload.get("spans") if isinstance(payload, dict) else None
    if not isinstance(raw_spans, list):
        raise IngestError('body must be a JSON object {"spans": [...]}')
    if not raw_spans:
        raise IngestError("spans: the batch is empty")
    if len(raw_spans) > max_spans:
        raise IngestError(f"spans: {len(raw_spans)} spans, at most {max_spans} per batch", status=413)
    spans = []
    for i, raw in enumerate(raw_spans):
        where = f"spans[{i}]"
        if not isinstance(raw, dict):
            raise IngestError(f"{where}: must be an object")
        unknown = set(raw) - FIELDS
        if unknown:
            raise IngestError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        trace_id = raw.get("trace_id")
        if not isinstance(trace_id, str) or not _HEX32.match(trace_id):
            raise IngestError(f"{where}.trace_id: must be 32 lowercase hex characters")
        span_id = raw.get("span_id")
        if not isinstance(span_id, str) or not _HEX16.match(span_id):
            raise IngestError(f"{where}.span_id: must be 16 lowercase hex characters")
        parent = raw.get("parent_span_id") or ""
        if parent and (not isinstance(parent, str) or not _HEX16.match(parent)):
            raise IngestError(f"{where}.parent_span_id: must be 16 lowercase hex characters or null")
        if "start_time" not in raw:
            raise IngestError(f"{where}.start_time: required")
        start = parse_time(raw["start_time"], f"{where}.start_time")
        end = parse_time(raw["end_time"], f"{where}.end_time") if raw.get("end_time") is not None else None
        if end is not None and end < start:
            raise IngestError(f"{where}.end_time: before start_time")
        values: dict[str, Any] = {}  # the text fields, all str; Any only for Span(**values)
        for name, limit in TEXT_LIMITS.items():
            value = raw.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise IngestError(f"{where}.{name}: must be a string")
            if len(value) > limit:
                raise IngestError(f"{where}.{name}: longer than {limit} characters")
            values[name] = value
        if not values.get("name"):
            raise IngestError(f"{where}.name: required")
        # Strings first: a list or an object (unhashable) in the set lookups used to fail the request with a 500.
        kind = raw.get("kind", "other")
        if not isinstance(kind, str) or kind not in KINDS:
            raise IngestError(f"{where}.kind: must be one of {', '.join(sorted(KINDS))}")
        status = raw.get("status", "unset")
        if not isinstance(status, str) or status not in STATUSES:
            raise IngestError(f"{where}.status: must be one of {', '.join(sorted(STATUSES))}")
        trace_status = raw.get("trace_status") or ""
        if trace_status and (not isinstance(trace_status, str) or trace_status not in TRACE_STATUSES):
            raise IngestError(f"{where}.trace_status: must be one of ok, error, killed")
        args = raw.get("tool_arguments")
        if args is not None and not isinstance(args, dict | list):
            raise IngestError(f"{where}.tool_arguments: must be an object or array")
        attributes = raw.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise IngestError(f"{where}.attributes: must be an object")
        try:
            cost = Decimal(str(raw.get("cost", 0)))
        except InvalidOperation:
            raise IngestError(f"{where}.cost: must be a number") from None
        if not cost.is_finite() or cost < 0 or cost >= COST_BOUND:
            raise IngestError(f"{where}.cost: must be a number from 0 to {COST_BOUND - 1}")
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                start=start,
                end=end,
                kind=kind,
                status=status,
                trace_status=trace_status,
                tool_arguments=args,
                tokens_in=_int(raw.get("tokens_in", 0), f"{where}.tokens_in"),
                tokens_out=_int(raw.get("tokens_out", 0), f"{where}.tokens_out"),
                cost=cost.quantize(Decimal("0.000001")),
                attributes=attributes,
                **values,
            )
        )
    return spans
