"""Large values kept apart from the step row: any one value over APART_BYTES is compressed into ``StepPayload``.

A span's input, output, tool arguments or any single attribute may be megabytes (a retrieved document, a
whole file a tool read). Stored in the step row, every read of the steps table would carry it; instead
``payloads_split`` gives the writer a copy of the span whose big values are short previews, and the full
values compressed. The step's ``attributes["firebreak.apart"]`` says which fields are apart and their size.
"""

import dataclasses
import zlib
from dataclasses import dataclass
from typing import cast

import orjson

from traces.ingest.spans import JsonValue, Span

APART_BYTES = 64 * 1024  # a value larger than this (UTF-8 bytes) is stored apart
PREVIEW_CHARS = 2000  # what the step row keeps of it: the viewer's first screen shows as much
APART_KEY = "firebreak.apart"  # in Step.attributes: {field: size in bytes} of the values stored apart
PREVIEW_KEY = "firebreak.preview"  # tool arguments stored apart: the row keeps {PREVIEW_KEY: text, APART_KEY: size}
# Level 1: a 10 MiB value compresses in ~25 ms (text) to ~0.2 s (random hex) on this machine; level 6 takes
# about three times as long for a ratio within a few percent on the data that matters (text, JSON).
ZLIB_LEVEL = 1
TEXT, JSON = "text/plain", "application/json"
# Tuples, not ``str | int``: a union is built on every isinstance call, and this runs for every span.
_SCALARS = (str, int, float, bool)
_CONTAINERS = (list, dict)


@dataclass(frozen=True, slots=True)
class Payload:
    """A value of one span to store apart: ``data`` is zlib-compressed UTF-8 of ``size`` bytes."""

    field: str
    content_type: str
    size: int
    data: bytes


# A text of at most this many characters is at most APART_BYTES bytes (4 bytes a character at most): callers
# compare len() with it inline before calling _over, which runs for every text of every span.
_SURELY_SMALL = APART_BYTES // 4


def _over(text: str) -> bool:
    # Characters bound bytes from below (and a quarter of them from above): encode only when it can matter.
    return len(text) > APART_BYTES or len(text.encode()) > APART_BYTES


def _payload(field: str, text: str, content_type: str) -> Payload:
    raw = text.encode("utf-8", "replace")
    return Payload(field=field, content_type=content_type, size=len(raw), data=zlib.compress(raw, ZLIB_LEVEL))


def _json_text(value: JsonValue) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def payloads_split(span: Span) -> tuple[Span, list[Payload]]:
    """``span`` as its step row should hold it, and the values to store apart.

    When nothing is over APART_BYTES the span itself comes back with no payloads. Otherwise a copy (the
    span passed in is never changed: a batch that cannot be written is spooled whole) in which each big
    value is replaced by its first PREVIEW_CHARS characters — the tool arguments by
    ``{"firebreak.preview": <JSON text>, "firebreak.apart": size}`` — and ``attributes["firebreak.apart"]``
    maps each field to its size in bytes. The action hash was taken on the full arguments before this.
    """
    payloads: list[Payload] = []
    changes: dict[str, object] = {}
    for name, text in (("input", span.input), ("output", span.output)):
        if len(text) > _SURELY_SMALL and _over(text):
            payloads.append(_payload(name, text, TEXT))
            changes[name] = text[:PREVIEW_CHARS]
    if span.tool_arguments is not None and not isinstance(span.tool_arguments, _SCALARS):
        text = _json_text(span.tool_arguments)
        if len(text) > _SURELY_SMALL and _over(text):
            payload = _payload("tool_arguments", text, JSON)
            payloads.append(payload)
            changes["tool_arguments"] = {PREVIEW_KEY: text[:PREVIEW_CHARS], APART_KEY: payload.size}
    attributes: dict[str, JsonValue] | None = None
    for key, value in span.attributes.items():
        if isinstance(value, str):
            text, content_type = value, TEXT
        elif isinstance(value, _CONTAINERS):
            text, content_type = _json_text(value), JSON
        else:
            continue
        if len(text) > _SURELY_SMALL and _over(text):
            payload = _payload(f"attributes.{key}", text, content_type)
            payloads.append(payload)
            if attributes is None:
                attributes = dict(span.attributes)
            attributes[key] = text[:PREVIEW_CHARS]
    if not payloads:
        if APART_KEY in span.attributes:  # only ingest says what is stored apart
            return dataclasses.replace(
                span, attributes={k: v for k, v in span.attributes.items() if k != APART_KEY}
            ), []
        return span, []
    attributes = attributes if attributes is not None else dict(span.attributes)
    attributes[APART_KEY] = cast(JsonValue, {p.field: p.size for p in payloads})
    changes["attributes"] = attributes
    return dataclasses.replace(span, **changes), payloads  # type: ignore[arg-type]


def apart_sizes(marker: object) -> dict[str, int]:
    """A step's ``attributes["firebreak.apart"]`` as {field: size in bytes}; the attributes come from the
    sender, so anything else in it is left out."""
    if not isinstance(marker, dict):
        return {}
    return {str(k): v for k, v in marker.items() if isinstance(v, int) and not isinstance(v, bool)}


def payload_text(data: bytes) -> str:
    """The value a payload holds, as text."""
    return zlib.decompress(data).decode("utf-8", "replace")
