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
    # Or a cheap regex every match also matches (found in any text that holds a match: no anchors, no \\b, no
    # lookaround, and as case-blind as ``regex`` is). A regex that starts with a literal is searched fastest.
    hint: re.Pattern[str] | None = None
    # The hint for ASCII text, where it can be a faster one (\d is [0-9] there): the same matches on such text.
    ascii_hint: "re.Pattern[str] | RunFirst | None" = None
    # The needles as one regex (one C-level search, their common start first so that the search skips ahead
    # to it); None for folded needles, which are looked for in the lower-cased text.
    needle_regex: re.Pattern[str] | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.fold and not all(n.isascii() and n == n.lower() for n in self.needles):
            raise ValueError("folded needles are lower-case ASCII")
        if self.needles and not self.fold:
            start = self.needles[0]
            while not all(n.startswith(start) for n in self.needles):
                start = start[:-1]
            rest = "|".join(re.escape(n[len(start) :]) for n in self.needles)
            object.__setattr__(self, "needle_regex", re.compile(f"{re.escape(start)}(?:{rest})"))

    def may_match(self, text: str) -> bool:
        """False when ``regex`` cannot match in ``text``, nor in any part of it (a cheap test)."""
        if self.fold:
            if not _folded_in(text, self.needles):
                return False
        elif self.needle_regex is not None and self.needle_regex.search(text) is None:
            return False
        hint = self.ascii_hint if self.ascii_hint is not None and text.isascii() else self.hint
        return hint is None or hint.search(text) is not None


class RunFirst:
    """A hint for ASCII text: ``regex.search``, answered None at once when the text has no run of ``length``
    characters of ``chars``, which every match of ``regex`` holds. The run is looked for with bytes.translate and
    bytes.find, C loops several times faster than the regular expression's own scan of a character class."""

    def __init__(self, regex: re.Pattern[str], chars: str, length: int) -> None:
        self.regex = regex
        self._table = bytes(0x23 if chr(b) in chars else 0x2E for b in range(256))  # "#" in the run, "." not
        self._run = b"#" * length

    def search(self, text: str) -> re.Match[str] | None:
        if self._run not in text.encode("ascii").translate(self._table):
            return None
        return self.regex.search(text)


# Characters that IGNORECASE matches to an ASCII letter although str.lower() does not give that letter
# (U+0130 and U+0131 for i, U+017F for s); a test in core/tests pins this against the re module.
FOLD_ODD = "\u0130\u0131\u017f"


def _folded_in(text: str, needles: tuple[str, ...]) -> bool:
    # What (?i:needle) would find, for lower-case ASCII needles: str.find is much faster than a case-blind regex.
    low = text.lower()
    return any(n in low for n in needles) or any(c in text for c in FOLD_ODD)


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
        # Case-blind as the regex is (under IGNORECASE, "k" also matches the Kelvin sign): 8 token characters
        # after the word, so "basic" in prose does not wake the pattern.
        hint=re.compile(r"(?i:bearer|basic)\s+(?i:[A-Za-z0-9._~+/=-]){8}"),
    ),
    Pattern(
        "openai_key",
        re.compile(r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"),
        needles=("sk-",),
        hint=re.compile(r"sk-[A-Za-z0-9_-]{16}"),  # "task-", "risk-" in prose: only 16 key characters after
    ),
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
        hint=re.compile(r"://[^\s:/?#@]*:[^\s/?#@]+@"),  # a URL with a password, not every URL
    ),
    Pattern(
        "url_token",
        re.compile(rf"(?i)[?&;](?:{_QUERY_KEYS})=([^&#\s\"'<>]+)"),
        group=1,
        needles=("=",),
        # Case-blind as the regex is: "to\u212aen=" (the Kelvin sign) is a token key to it, and the hint missed it.
        hint=re.compile(r"[?&;](?i:[A-Za-z_-])+="),
    ),
    Pattern(
        "card",
        re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
        check=_card_ok,
        # 13 digits and separators in a row: order numbers and ids of 6 digits no longer wake the pattern. A
        # character class repeat, not (?:\d[ -]?){12}: about three times faster to search.
        hint=re.compile(r"\d[\d -]{11}\d"),
        # A plain class (about 40 % faster than \d), searched only where 13 of its characters are in a row.
        ascii_hint=RunFirst(re.compile(r"[0-9][0-9 -]{11}[0-9]"), "0123456789 -", 13),
    ),
    Pattern(
        "ssn",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
        needles=("-",),
        hint=re.compile(r"-\d\d-\d{4}"),  # starts with a literal (fast to search); dates (2024-07-18) fail it
    ),
)


@dataclass(frozen=True)
class Scrubber:
    keys: tuple[str, ...]
    patterns: tuple[Pattern, ...]
    secret: bytes
    # key -> sensitive(key), for ``many``: a span's attribute keys repeat from span to span. Bounded (keys are
    # untrusted input): cleared when full.
    _sensitive: dict[str, bool] = field(default_factory=dict, init=False, compare=False, repr=False)

    def placeholder(self, kind: str, secret: str) -> str:
        digest = hmac.new(self.secret, f"{kind}\x00{secret}".encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"[REDACTED:{kind}:{digest.hexdigest()[:8]}]"

    def sensitive(self, key: str) -> bool:
        nk = norm_key(key)
        return bool(nk) and nk.endswith(self.keys)

    def key_sensitive(self, key: str) -> bool:
        """``sensitive(key)``, remembered."""
        found = self._sensitive.get(key)
        if found is None:
            if len(self._sensitive) >= 8192:
                self._sensitive.clear()
            found = self._sensitive[key] = self.sensitive(key)
        return found

    def _active(self, text: str) -> tuple[Pattern, ...]:
        """The patterns whose cheap test ``text`` passes (all with no test): no other can match in it, nor in
        any part of it. One search per pattern, each fast; one alternation of all the tests was slower."""
        return tuple(p for p in self.patterns if p.may_match(text))

    def text(self, value: str) -> str:
        """``value`` with NUL replaced and every secret pattern's match replaced by its placeholder."""
        return self._text(value, self._active(value))

    def _text(self, value: str, patterns: tuple[Pattern, ...]) -> str:
        # ``patterns``: those that may match in ``value`` (a replacement never makes another pattern's test
        # pass: a placeholder has no digit run, "=", "-", "://" or needle of any default pattern).
        if "\x00" in value:
            value = value.replace("\x00", NUL_REPLACEMENT)
        for p in patterns:
            if p.may_match(value):
                value = p.regex.sub(lambda m, p=p: self._sub(p, m), value)  # type: ignore[misc]
        return value

    def many(self, texts: list[str], values: list[Any]) -> tuple[list[str], list[Any]]:
        """``[self.text(t) for t in texts]`` and ``[self.value(v) for v in values]``, the same results, for less:
        the patterns' cheap tests run once over all their strings (keys too) joined, and only the patterns
        whose test passed run on each string. When nothing can change (no pattern's test passed, no NUL, no
        sensitive key, nothing too deep or unstorable) every text and value comes back as it is, the values
        the same objects, not copies. Ingest's hot path: a span's ~40 strings, most of them clean."""
        strings = [t for t in texts if t]
        for v in values:
            if not _plain_into(v, strings, self):  # rare (a sensitive key…): one string at a time
                return [self.text(t) for t in texts], [self.value(v) for v in values]
        joined = "\n".join(strings)
        active = self._active(joined)
        if not active and "\x00" not in joined:
            return list(texts), list(values)
        return (
            [self._text(t, active) if t else t for t in texts],
            [self._value(v, lambda t: self._text(t, active), MAX_DEPTH) for v in values],
        )

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
        return self._value(value, self.text, max_depth)

    def _value(self, value: Any, text: Callable[[str], str], max_depth: int) -> Any:
        if isinstance(value, str):
            return text(value)
        if not isinstance(value, dict | list | tuple):
            return _storable(value)
        root: list[Any] = [None]
        # Each work item: (source container, target container, key/index in the target, depth).
        stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
        while stack:
            src, parent, slot, depth = stack.pop()
            if isinstance(src, str):
                parent[slot] = text(src)
            elif isinstance(src, dict | list | tuple) and depth > max_depth:
                parent[slot] = self.placeholder("depth", _shallow_repr(src))
            elif isinstance(src, dict):
                out: dict[str, Any] = {}
                parent[slot] = out
                for k, v in src.items():
                    key = text(str(k))
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


def _plain_into(value: Any, strings: list[str], scrubber: Scrubber) -> bool:
    """Append every string of the JSON value ``value`` (keys too) to ``strings``; False when scrubbing it would
    change it whatever its strings hold: a sensitive or non-string key, a container deeper than MAX_DEPTH, a
    tuple (scrubbed into a list), a number JSON storage cannot hold. Iterative, stops at the first of those.
    Exact types first (``type(x) is str``): this runs for every attribute of every span ingested."""
    sensitive = scrubber.key_sensitive
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth > MAX_DEPTH:
                return False
            for k, x in v.items():
                if type(k) is not str or sensitive(k):
                    return False
                strings.append(k)
                kind = type(x)
                if kind is str:
                    strings.append(x)
                elif kind is int or kind is bool or x is None:
                    if kind is int and not -(2**63) <= x < 2**64:
                        return False
                elif kind is float:
                    if not math.isfinite(x):
                        return False
                else:
                    stack.append((x, depth + 1))
        elif isinstance(v, str):
            strings.append(v)
        elif isinstance(v, list):
            if depth > MAX_DEPTH:
                return False
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, tuple) or _storable(v) is not v:
            return False
    return True


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
