"""The native ingest format: one span as the JSON the server accepts, a batch's body, and the server's limits.

Every span the SDK sends is valid, so one odd value never costs a whole batch: texts are cut to the server's
limits (the span's ``attributes["firebreak.truncated"]`` lists them), counts clamped, a bad cost left out, tool
arguments and attributes made JSON-safe.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

KINDS = frozenset({"llm", "tool", "retrieval", "decision", "agent", "other"})
STATUSES = frozenset({"unset", "ok", "error"})
# What the server accepts (traces/ingest/parse/native.py, settings FIREBREAK_INGEST_*): the SDK's copy.
# tests/sdk/test_contract.py fails when one side changes without the other.
MAX_SPANS_PER_BATCH = 10_000  # the server's limit per request
MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under the server's default body limit (16 MiB)
# A span larger than MAX_BATCH_BYTES goes alone: its input and output are cut until it fits one request, with
# room for the batch around it. The server keeps any value over 64 KiB whole, apart from the step row.
MAX_SPAN_BYTES = 15 * 1024 * 1024
COUNT_MAX = 2**31 - 1  # tokens_in, tokens_out
COST_MAX = 99_999_999.0  # USD; the server refuses 100,000,000 and more
# The server's length limits (characters): longer values are cut, and the span's attributes say so. Input and
# output are bounded by the request body alone (MAX_SPAN_BYTES).
TEXT_LIMITS = {
    "name": 500,
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
    "input": 16 * 1024 * 1024,
    "output": 16 * 1024 * 1024,
}


# The last whole second formatted and its text, as one tuple (replaced whole, so threads never see half of it).
_last_second: tuple[int, str] = (-(2**63), "")


def iso_time(ns: int) -> str:
    """Epoch nanoseconds as ISO 8601 in UTC with microseconds and an offset (``2026-12-02T07:58:24.757000+00:00``,
    as ``datetime.isoformat`` writes it). Two per span: the second's text is kept (8 µs → under 1 µs a call)."""
    global _last_second
    seconds, rest = divmod(ns, 1_000_000_000)
    known, text = _last_second
    if known != seconds:
        text = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, text)
    return f"{text}.{rest // 1000:06d}+00:00"


def _jsonable(value: Any, active: set[int] | None = None, depth: int = 0) -> Any:
    """A copy that ``json.dumps`` accepts: string keys, finite numbers, no cycles, anything else as ``str``."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    active = active if active is not None else set()
    if id(value) in active or depth > 64:
        return "<cycle>" if id(value) in active else "<too deep>"
    if isinstance(value, dict | list | tuple | set | frozenset):
        active.add(id(value))
        try:
            if isinstance(value, dict):
                return {str(k): _jsonable(v, active, depth + 1) for k, v in value.items()}
            return [_jsonable(v, active, depth + 1) for v in value]
        finally:
            active.discard(id(value))
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError):
        return _dumps(_jsonable(value))


def describe_error(error: Any) -> str:
    if isinstance(error, BaseException):
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)


def _count(value: Any) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(n, 0), COUNT_MAX)


def _cost(value: Any) -> float | None:
    try:
        c = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(c) or c < 0:
        return None
    return round(min(c, COST_MAX), 6)


def encode_span(fields: dict[str, Any]) -> bytes:
    """One native span as UTF-8 JSON, made valid for the server: texts cut to its limits (the span's
    ``attributes["firebreak.truncated"]`` lists them), counts clamped, a bad cost left out, tool arguments
    and attributes made JSON-safe. ``None`` values are left out."""
    span: dict[str, Any] = {}
    truncated = []
    for key, value in fields.items():
        if value is None:
            continue
        if key in TEXT_LIMITS:
            text = _text(value)
            if len(text) > TEXT_LIMITS[key]:
                text = text[: TEXT_LIMITS[key]]
                truncated.append(key)
            span[key] = text
        elif key in ("tokens_in", "tokens_out"):
            if (n := _count(value)) is not None:
                span[key] = n
        elif key == "cost":
            if (c := _cost(value)) is not None:
                span[key] = c
        elif key == "tool_arguments":
            if isinstance(value, tuple | set | frozenset):
                value = list(value)
            span[key] = value if isinstance(value, dict | list) else {"value": value}
        elif key == "attributes":
            span[key] = dict(value) if isinstance(value, dict) else {"value": value}
        else:  # ids, times, kind, status, trace_status, agent: produced by this module, already valid
            span[key] = value
    if not span.get("name"):
        span["name"] = span.get("kind", "span")
    data = _encoded(span, truncated)
    while len(data) > MAX_SPAN_BYTES:
        # Too large for one request: cut the longer of input and output by the excess (a character is at least
        # one byte of the body, so one cut of each is enough) and say so.
        key = max(("input", "output"), key=lambda k: len(span.get(k, "")))
        if not span.get(key):
            break  # the arguments or attributes alone are too large: the server will refuse it with a 413
        span[key] = span[key][: max(0, len(span[key]) - (len(data) - MAX_SPAN_BYTES) - 1024)]
        if key not in truncated:
            truncated.append(key)
        data = _encoded(span, truncated)
    return data


def _encoded(span: dict[str, Any], truncated: list[str]) -> bytes:
    if truncated:
        span["attributes"] = {**span.get("attributes", {}), "firebreak.truncated": truncated}
    try:
        text = _dumps(span)
    except (TypeError, ValueError, RecursionError):
        for key in ("tool_arguments", "attributes"):
            if key in span:
                span[key] = _jsonable(span[key])
        text = _dumps(span)
    return text.encode("utf-8", "replace")  # a lone surrogate becomes "?", not an undecodable body


def encode_batch(spans: list[bytes]) -> bytes:
    """The body of ``POST /api/v1/ingest`` for spans made by :func:`encode_span`."""
    return b'{"spans":[' + b",".join(spans) + b"]}"
