"""DRF's JSON parser with bounds: nesting, non-finite numbers and invalid UTF-8 are a 400 naming the body."""

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# API bodies (not spans: those go through traces.ingest) are small documents; nothing legitimate nests
# deeper than this.
MAX_DEPTH = 64


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def depth_problem(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Where ``value`` nests deeper than ``max_depth`` (a JSON path like ``a.b[0]``), or None. Iterative."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > max_depth:
            return path or "body"
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            if isinstance(v, dict | list):
                stack.append((v, f"{path}.{k}" if isinstance(k, str) else f"{path}[{k}]", depth + 1))
    return None


class BoundedJSONParser(JSONParser):
    """JSON that nests at most MAX_DEPTH deep, with finite numbers, in UTF-8; else ParseError (400)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.load(codecs.getreader(encoding)(stream), parse_float=_finite, parse_constant=_no_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - body: nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - body: {exc}") from None
        where = depth_problem(data)
        if where is not None:
            raise ParseError(f"JSON parse error - {where.lstrip('.')}: nested deeper than {MAX_DEPTH} levels")
        return data
