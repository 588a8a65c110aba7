"""Span normalization shared by every ingest format: redaction and the action hash."""

import hashlib
import json
import re
from functools import lru_cache

from django.conf import settings

from traces.ingest.spans import JsonValue

REDACTED = "[REDACTED]"
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


_NON_ALNUM = re.compile(r"[^a-z0-9]")
_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=4096)
def _norm_key(key: str) -> str:
    # Argument keys repeat across spans: cache their normal form.
    return _NON_ALNUM.sub("", key.lower())


@lru_cache(maxsize=8)
def _redact_suffixes(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_norm_key(k) for k in keys if k)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _redact_string(value: str) -> str:
    if _DIGIT.search(value) is None:
        return value
    value = _SSN.sub("[REDACTED:ssn]", value)

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "[REDACTED:card]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)

    return _CARD.sub(card, value)


def redact(value: JsonValue, suffixes: tuple[str, ...] | None = None) -> JsonValue:
    """Return ``value`` with sensitive keys' values and card/SSN patterns replaced.

    A key is sensitive when its letters and digits end with one of
    FIREBREAK_REDACT_KEYS (so ``db_password`` and ``X-Api-Key`` match, ``max_tokens`` does not).
    """
    if suffixes is None:
        suffixes = _redact_suffixes(tuple(settings.FIREBREAK_REDACT_KEYS))
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for k, v in value.items():
            nk = _norm_key(str(k))
            out[k] = REDACTED if nk and nk.endswith(suffixes) else redact(v, suffixes)
        return out
    if isinstance(value, list):
        return [redact(v, suffixes) for v in value]
    if isinstance(value, str):
        return _redact_string(value)
    return value


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def action_hash(tool_name: str, arguments: object) -> str:
    """16 hex chars identifying a tool call by tool and canonical arguments: equal calls, equal hash."""
    if not tool_name:
        return ""
    payload = tool_name + "\x00" + canonical_json(arguments if arguments is not None else {})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
