"""traces.ingest.normalize: a span's strings scrubbed at once give what scrubbing them field by field gives."""

import dataclasses
import random
from datetime import UTC, datetime

from core.redaction import Scrubber, scrubber
from traces.ingest.normalize import _TEXT_FIELDS, span_scrub
from traces.ingest.spans import Span

PIECES = [
    "Authorization: Bearer abcDEF123456789xyz", "sk-proj-AbCdEfGhIjKlMnOpQrStUv123", "postgres://app:pw12345@db/x",
    "https://x.io/?token=tok_live_42abc&page=2", "4111 1111 1111 1111", "ssn 123-45-6789", "order A-859087",
    "gpt-4o-mini-2024-07-18", "x" * 600, "\x00", "plain words", "AKIAIOSFODNN7EXAMPLE", "-", "=", " ",
]  # fmt: skip


def _field_by_field(span: Span, s: Scrubber) -> Span:
    """What span_scrub did before it scrubbed a span at once: each field alone, every pattern on every string."""
    for name, limit in _TEXT_FIELDS.items():
        text = getattr(span, name)
        if text:
            clean = s.text(text)
            setattr(span, name, clean if limit is None else clean[:limit])
    if span.tool_arguments is not None:
        span.tool_arguments = s.value(span.tool_arguments)
    if span.attributes:
        span.attributes = s.value(span.attributes)
    return span


def test_a_span_scrubbed_at_once_equals_each_field_scrubbed_alone_with_every_pattern():
    s = scrubber()
    everywhere = Scrubber(
        keys=s.keys,
        patterns=tuple(dataclasses.replace(p, needles=(), hint=None, ascii_hint=None, fold=False) for p in s.patterns),
        secret=s.secret,
    )
    rng = random.Random(11)

    def text() -> str:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3)))

    changed = 0
    for _ in range(400):
        fields = {name: text() for name in _TEXT_FIELDS}
        args = rng.choice([None, text(), {"q": text(), "n": 3}, [text(), {"password": text()}]])
        attrs = rng.choice([{}, {"gen_ai.response.id": text(), "k": [text(), 1.5]}, {"api_key": text(), "x": 2**80}])
        span = Span(trace_id="a" * 32, span_id="b" * 16, start=datetime.now(UTC), agent="x\x00" if rng.random() < 0.1
                    else "x", tool_arguments=args, attributes=attrs, **fields)  # fmt: skip
        expected = _field_by_field(dataclasses.replace(span), everywhere)
        got = span_scrub(span)
        assert repr(got) == repr(dataclasses.replace(expected, agent=got.agent))
        assert got.agent in ("x", "x\ufffd")
        changed += got.input != fields["input"]
    assert changed > 100  # the corpus holds secrets, so the two paths had something to agree on
