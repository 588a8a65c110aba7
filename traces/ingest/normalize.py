"""Span normalization shared by every ingest format: redaction (``core.redaction``) and the action hash."""

import hashlib
import json
from typing import cast

from core.redaction import Scrubber, scrubber
from traces.ingest.spans import JsonValue, Span

# Every text field of a span the scrubber sees, with the longest value its column holds (a placeholder can be
# longer than the secret it replaces: cut back to the column). None: a text column, no limit.
_TEXT_FIELDS: dict[str, int | None] = {
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
    "error_message": None,
    "input": None,
    "output": None,
}


def span_scrub(span: Span, *, using: Scrubber | None = None) -> Span:
    """Scrub every string ``span`` carries, in place, before it is stored or logged; returns ``span``.

    Text fields, tool arguments and attributes (keys and values) go through ``core.redaction``: secrets
    become keyed placeholders, NUL becomes U+FFFD (the span is kept). Identifiers the server checked
    (trace, span and parent ids, kind and statuses) are left alone, and the agent slug only loses NUL.
    """
    if "\x00" in span.agent:  # no agent has it: the span is refused as for an unknown agent, not a 500
        span.agent = span.agent.replace("\x00", "\ufffd")
    # All of the span's strings at once (core.redaction's Scrubber.many): the same results as field by field,
    # the patterns' cheap tests run once over the span, and a clean span's values are kept, not copied.
    texts, (tool_arguments, attributes) = (using or scrubber()).many(
        [getattr(span, name) for name in _TEXT_FIELDS], [span.tool_arguments, span.attributes or {}]
    )
    for (name, limit), clean in zip(_TEXT_FIELDS.items(), texts, strict=True):
        if limit is not None and len(clean) > limit:
            clean = clean[:limit]
        setattr(span, name, clean)
    span.tool_arguments = cast(JsonValue, tool_arguments)
    if span.attributes:
        span.attributes = cast(dict[str, JsonValue], attributes)
    return span


# One encoder for every call (json.dumps builds one per call when given arguments): the same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: object) -> str:
    return _CANONICAL.encode(value)


def action_hash(tool_name: str, arguments: object) -> str:
    """16 hex chars identifying a tool call by tool and canonical arguments: equal calls, equal hash."""
    if not tool_name:
        return ""
    payload = tool_name + "\x00" + canonical_json(arguments if arguments is not None else {})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
