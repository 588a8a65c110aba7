"""The one scrubber: every string that comes from an agent goes through it before it is stored or logged.

``scrub(value)`` walks a JSON value (iteratively, so no nesting can raise RecursionError) and returns a
copy where

- the value under a sensitive key (``password``, ``api_key``, ``authorization``, ``cookie``…: the key's
  letters and digits, lower-cased, end with one of the sensitive names) is replaced whole;
- secrets inside strings (bearer tokens, ``sk-`` keys, AWS/GitHub/Slack/Google keys, JWTs, passwords
  in URLs, tokens in query strings, Luhn-valid card numbers, US SSNs) are replaced;
- NUL characters (PostgreSQL text and jsonb cannot hold them) become U+FFFD, and numbers JSON storage
  cannot hold (integers past 64 bits, infinity, NaN) their text: a span is never lost for one value.

A placeholder is ``[REDACTED:<kind>:<8 hex>]``, the hex a keyed hash (HMAC-SHA256 with
FIREBREAK_REDACT_SECRET) of the secret: the same secret always gives the same placeholder, two
different secrets (almost surely) different ones, so two tool calls that differ only in a secret keep
different action hashes, and nobody without the key can test guesses against a placeholder.

Settings (from the environment, see firebreak/settings.py): ``FIREBREAK_REDACT_KEYS`` adds sensitive
key names to DEFAULT_KEYS, ``FIREBREAK_REDACT_PATTERNS`` adds regular expressions (the whole match is
replaced), ``FIREBREAK_REDACT_DISABLE`` switches default patterns off by name (e.g. ``ssn``).
"""

import hashlib
import hmac
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings

# Normalised (letters and digits, lower case) key names whose values are always secret. A key matches when
# its normal form ends with one of them: ``db_password`` and ``X-Api-Key`` match, ``max_tokens`` does not.
DEFAULT_KEYS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "credentials",
    "cookie",
    "setcookie",
    "auth",
    "authorization",
    "session",
    "sessionkey",
    "ssn",
    "cardnumber",
    "ccnumber",
    "creditcard",
    "cvv",
    "cvc",
    "signature",
)

# Nesting deeper than this is kept as one placeholder: spans' attributes and tool arguments may be deep
# (an agent sends what its framework made), but a walk must stay bounded.
MAX_DEPTH = 64
NUL_REPLACEMENT = "\ufffd"

_NON_ALNUM = re.compile(r"[^a-z0-9]")
_DIGITS = re.compile(r"\D")


@lru_cache(maxsize=4096)
def norm_key(key: str) -> str:
    """A key's letters and digits, lower-cased: ``X-Api-Key`` → ``xapikey``. Cached: keys repeat."""
    return _NON_ALNUM.sub("", key.lower())


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class Pattern:
    """``regex``'s match is a secret of ``kind``; ``group`` is the part replaced (0: the whole match)."""

    kind: str
    regex: re.Pattern[str]
    group: int = 0
    check: Callable[[str], bool] | None = None
    # Substrings one of which every match holds (in the lower-cased text when ``fold``): text without any is
    # skipped without running the regex, which keeps ingest fast on long model output.
    needles: tuple[str, ...] = ()
    fold: bool = False
    # Or a cheap regex every match also matches.
    hint: re.Pattern[str] | None = None
    # The needles as one regex: one C-level search per text instead of a Python loop over the needles (a span
    # has ~20 texts and there are 11 patterns: the loop was most of ingest's CPU per span).
    needle_regex: re.Pattern[str] | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.needles:
            flags = re.IGNORECASE if self.fold else 0
            object.__setattr__(self, "needle_regex", re.compile("|".join(map(re.escape, self.needles)), flags))

    def may_match(self, text: str) -> bool:
        if self.needle_regex is not None and self.needle_regex.search(text) is None:
            return False
        return self.hint is None or self.hint.search(text) is not None


def _card_ok(text: str) -> bool:
    digits = _DIGITS.sub("", text)
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


_QUERY_KEYS = (
    r"token|access_token|refresh_token|id_token|auth|api_key|apikey|api-key|key|password|passwd|pwd|secret"
    r"|client_secret|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|session|code"
)

_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA")
DEFAULT_PATTERNS = (
    # Order matters: the specific shapes go before the generic ones that would eat them.
    Pattern("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), needles=("eyJ",)),
    Pattern(
        "bearer",
        re.compile(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})"),
        group=1,
        needles=("bearer", "basic"),
        fold=True,
    ),
    Pattern("openai_key", re.compile(r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"), needles=("sk-",)),
    Pattern("aws_key", re.compile(rf"\b(?:{'|'.join(_AWS_PREFIXES)})[A-Z0-9]{{16}}\b"), needles=_AWS_PREFIXES),
    Pattern(
        "github_token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
        needles=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Pattern("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), needles=("xox",)),
    Pattern("google_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), needles=("AIza",)),
    Pattern(
        "url_password",
        re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@]*:([^\s/?#@]+)@"),
        group=1,
        needles=("://",),
    ),
    Pattern(
        "url_token",
        re.compile(rf"(?i)[?&;](?:{_QUERY_KEYS})=([^&#\s\"'<>]+)"),
        group=1,
        needles=("=",),
        hint=re.compile(r"[?&;][A-Za-z_-]+="),
    ),
    Pattern(
        "card",
        re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
        check=_card_ok,
        hint=re.compile(r"\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d"),
    ),
    Pattern(
        "ssn",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
        needles=("-",),
        hint=re.compile(r"\d-\d\d-\d"),
    ),
)


@dataclass(frozen=True)
class Scrubber:
    keys: tuple[str, ...]
    patterns: tuple[Pattern, ...]
    secret: bytes
    # Every pattern's cheap test in one regex: a text it does not match (most of them: names, ids, prose without
    # a digit run) skips the per-pattern loop. None when a pattern has no cheap test.
    gate: re.Pattern[str] | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        tests = []
        for p in self.patterns:
            if p.hint is not None:
                tests.append(p.hint.pattern)
            elif p.needle_regex is not None:
                tests.append(f"(?i:{p.needle_regex.pattern})" if p.fold else p.needle_regex.pattern)
            else:
                return
        object.__setattr__(self, "gate", re.compile("|".join(f"(?:{t})" for t in tests)))

    def placeholder(self, kind: str, secret: str) -> str:
        digest = hmac.new(self.secret, f"{kind}\x00{secret}".encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"[REDACTED:{kind}:{digest.hexdigest()[:8]}]"

    def sensitive(self, key: str) -> bool:
        nk = norm_key(key)
        return bool(nk) and nk.endswith(self.keys)

    def text(self, value: str) -> str:
        """``value`` with NUL replaced and every secret pattern's match replaced by its placeholder."""
        if "\x00" in value:
            value = value.replace("\x00", NUL_REPLACEMENT)
        if self.gate is not None and self.gate.search(value) is None:
            return value
        for p in self.patterns:
            if p.may_match(value):
                value = p.regex.sub(lambda m, p=p: self._sub(p, m), value)  # type: ignore[misc]
        return value

    def _sub(self, p: Pattern, m: re.Match[str]) -> str:
        whole = m.group(0)
        part = m.group(p.group)
        if part is None or whole.startswith("[REDACTED:") or (p.check is not None and not p.check(part)):
            return whole
        if part.startswith("[REDACTED:"):
            return whole
        start, end = m.start(p.group) - m.start(0), m.end(p.group) - m.start(0)
        return whole[:start] + self.placeholder(p.kind, part) + whole[end:]

    def value(self, value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
        """A scrubbed copy of the JSON value ``value`` (dicts, lists, strings, numbers, booleans, None).

        Keys are scrubbed too (NUL, patterns). Containers nested deeper than ``max_depth`` become one
        ``[REDACTED:depth:…]`` placeholder. Iterative: no input raises RecursionError.
        """
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, dict | list | tuple):
            return _storable(value)
        root: list[Any] = [None]
        # Each work item: (source container, target container, key/index in the target, depth).
        stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
        while stack:
            src, parent, slot, depth = stack.pop()
            if isinstance(src, str):
                parent[slot] = self.text(src)
            elif isinstance(src, dict | list | tuple) and depth > max_depth:
                parent[slot] = self.placeholder("depth", _shallow_repr(src))
            elif isinstance(src, dict):
                out: dict[str, Any] = {}
                parent[slot] = out
                for k, v in src.items():
                    key = self.text(str(k))
                    if self.sensitive(key):
                        out[key] = self.placeholder("key", v if isinstance(v, str) else _shallow_repr(v))
                    else:
                        out[key] = None
                        stack.append((v, out, key, depth + 1))
            elif isinstance(src, list | tuple):
                items: list[Any] = [None] * len(src)
                parent[slot] = items
                for i, v in enumerate(src):
                    stack.append((v, items, i, depth + 1))
            else:
                parent[slot] = _storable(src)
        return root[0]


def _storable(value: Any) -> Any:
    # A number JSON storage cannot hold (an integer past 64 bits, infinity, NaN) is kept as its text.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _shallow_repr(value: Any) -> str:
    # Enough of a deep container to tell two apart without walking it all: the canonical JSON of its
    # first 4 KiB, from an iterative encoder (json.dumps would recurse).
    out: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size < 4096:
        v = stack.pop()
        if isinstance(v, dict):
            for k in sorted(v, key=str, reverse=True):
                stack.append(v[k])
                stack.append(str(k))
            out.append("{")
        elif isinstance(v, list | tuple):
            stack.extend(reversed(v))
            out.append("[")
        else:
            piece = repr(v)
            out.append(piece)
            size += len(piece)
    return "".join(out)


def _compile(patterns: tuple[str, ...], disabled: tuple[str, ...]) -> tuple[Pattern, ...]:
    off = {d.strip().lower() for d in disabled if d.strip()}
    extra = tuple(Pattern("custom", re.compile(p)) for p in patterns if p)
    return tuple(p for p in DEFAULT_PATTERNS if p.kind not in off) + extra


@lru_cache(maxsize=8)
def _build(keys: tuple[str, ...], patterns: tuple[str, ...], disabled: tuple[str, ...], secret: str) -> Scrubber:
    all_keys = tuple(dict.fromkeys(DEFAULT_KEYS + tuple(norm_key(k) for k in keys if norm_key(k))))
    return Scrubber(keys=all_keys, patterns=_compile(patterns, disabled), secret=secret.encode())


def scrubber() -> Scrubber:
    """The scrubber the settings describe (built once per distinct settings)."""
    return _build(
        tuple(getattr(settings, "FIREBREAK_REDACT_KEYS", ())),
        tuple(getattr(settings, "FIREBREAK_REDACT_PATTERNS", ())),
        tuple(getattr(settings, "FIREBREAK_REDACT_DISABLE", ())),
        str(getattr(settings, "FIREBREAK_REDACT_SECRET", "") or settings.SECRET_KEY),
    )


def scrub(value: Any) -> Any:
    """``value`` (a JSON value or a string) with every secret replaced; see the module docstring."""
    return scrubber().value(value)


def scrub_text(value: str) -> str:
    """One string with NUL replaced and every secret pattern replaced."""
    return scrubber().text(value)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs a record's message and traceback text (wired on the console handler in
    settings.LOGGING): a secret that reaches a log line through an exception message or an argument is
    replaced as it would be in the database."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is logged as it is, never dropped
            return True
        record.msg, record.args = scrub_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info)
        return True
