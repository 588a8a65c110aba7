"""core.redaction: the one scrubber every string of a span goes through."""

import logging
import re
import sys

import pytest

from core.redaction import MAX_DEPTH, RedactingFilter, scrub, scrub_text

PLACEHOLDER = re.compile(r"\[REDACTED:[a-z_]+:[0-9a-f]{8}\]")

SECRETS = {
    "bearer": ("Authorization: Bearer abcDEF123456789xyz", "abcDEF123456789xyz"),
    "openai_key": ("key sk-abcdefghijklmnop1234567890 here", "sk-abcdefghijklmnop1234567890"),
    "openai_project_key": ("use sk-proj-AbCdEfGhIjKlMnOpQrStUv123 now", "sk-proj-AbCdEfGhIjKlMnOpQrStUv123"),
    "aws_key": ("aws AKIAIOSFODNN7EXAMPLE ok", "AKIAIOSFODNN7EXAMPLE"),
    "github_pat_classic": ("ghp_" + "a1B2" * 9, "ghp_" + "a1B2" * 9),
    "github_oauth": ("token gho_" + "Z9y8" * 9, "gho_" + "Z9y8" * 9),
    "github_fine_grained": ("github_pat_" + "11ABCDEFG0" * 4, "github_pat_" + "11ABCDEFG0" * 4),
    "slack_token": ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl"),
    "google_key": ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
    "jwt": (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "url_password": ("postgres://app:hunter2secret@db.internal:5432/x", "hunter2secret"),
    "url_token": ("GET https://api.example.com/v1?token=tok_live_42abc&page=2", "tok_live_42abc"),
    "url_access_token": ("https://x.io/cb?code=1&access_token=ya29.AbCdEf", "ya29.AbCdEf"),
    "url_api_key": ("https://maps.example.com/?api_key=K3y-V4lue", "K3y-V4lue"),
    "url_key": ("https://x.io/?key=plainkey123", "plainkey123"),
    "url_password_param": ("https://x.io/login?user=a&password=p4ss", "p4ss"),
    "url_sig": ("https://bucket.s3/x?sig=AbC%2Fdef", "AbC%2Fdef"),
    "card_spaces": ("pay with 4111 1111 1111 1111 today", "4111 1111 1111 1111"),
    "card_dashes": ("card 5500-0000-0000-0004", "5500-0000-0000-0004"),
    "card_plain": ("amex 378282246310005", "378282246310005"),
    "ssn": ("ssn 123-45-6789.", "123-45-6789"),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_secret_pattern_is_replaced_by_a_placeholder(name, settings):
    text, secret = SECRETS[name]
    out = scrub_text(text)
    assert secret not in out
    assert PLACEHOLDER.search(out), out


def test_the_text_around_a_secret_is_kept():
    assert scrub_text("pay with 4111 1111 1111 1111 today").startswith("pay with [REDACTED:card:")
    assert scrub_text("pay with 4111 1111 1111 1111 today").endswith("] today")
    assert scrub_text("postgres://app:pw12345@db/x").startswith("postgres://app:[REDACTED:url_password:")


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112",  # 16 digits that fail Luhn: an order number, kept
        "order 1234 5678 9012 3456",
        "ref 1234567890123",
        "phone 555-123-4567",
        "max_tokens 4096, temperature 0.2",
        "the bearer of bad news",
        "sk-short",
        "https://example.com/search?q=tokens&page=2",
    ],
)
def test_look_alikes_are_kept(text):
    assert scrub_text(text) == text


def test_distinct_secrets_get_distinct_placeholders_and_the_same_one_the_same():
    a = scrub_text("4111 1111 1111 1111")
    b = scrub_text("5500 0000 0000 0004")
    assert a != b
    assert scrub_text("4111 1111 1111 1111") == a
    assert scrub({"password": "one"}) != scrub({"password": "two"})
    assert scrub({"password": "one"})["password"] == scrub({"Password": "one"})["Password"]


def test_placeholders_depend_on_the_secret_key(settings):
    a = scrub_text("sk-abcdefghijklmnop1234567890")
    settings.FIREBREAK_REDACT_SECRET = "another-key"
    assert scrub_text("sk-abcdefghijklmnop1234567890") != a


SENSITIVE_KEYS = [
    "password", "db_password", "Passwd", "pwd", "passphrase", "client_secret", "token", "csrfToken",
    "api_key", "X-Api-Key", "apikey", "aws_access_key", "private_key", "credentials", "cookie",
    "Set-Cookie", "auth", "Authorization", "session", "ssn", "card_number", "Card Number", "cvv",
]  # fmt: skip


@pytest.mark.parametrize("key", SENSITIVE_KEYS)
def test_values_of_sensitive_keys_are_replaced_whatever_their_case_and_punctuation(key):
    out = scrub({key: "s3cr3t-value", "nested": [{key: {"deep": "s3cr3t-value"}}]})
    assert "s3cr3t-value" not in repr(out)
    assert PLACEHOLDER.fullmatch(out[key])


@pytest.mark.parametrize("key", ["max_tokens", "tokens_in", "session_id", "author", "user", "query"])
def test_ordinary_keys_are_kept(key):
    assert scrub({key: "plain value"}) == {key: "plain value"}


def test_settings_add_keys_and_patterns_and_switch_a_default_off(settings):
    settings.FIREBREAK_REDACT_KEYS = ["tenant"]
    settings.FIREBREAK_REDACT_PATTERNS = [r"ACME-\d{4}"]
    assert PLACEHOLDER.fullmatch(scrub({"Tenant": "acme"})["Tenant"])
    assert "ACME-1234" not in scrub_text("ticket ACME-1234")
    settings.FIREBREAK_REDACT_DISABLE = ["ssn"]
    assert scrub_text("ssn 123-45-6789") == "ssn 123-45-6789"


def test_nul_becomes_the_replacement_character_in_keys_and_values():
    assert scrub({"a\x00b": ["x\x00y"]}) == {"a\ufffdb": ["x\ufffdy"]}


def test_deep_nesting_is_walked_without_recursion_and_cut_at_the_bound():
    deep: object = "leaf"
    for _ in range(100_000):
        deep = [deep]
    out = scrub({"args": deep})
    node = out["args"]
    depth = 1
    while isinstance(node, list):
        node = node[0]
        depth += 1
    assert depth == MAX_DEPTH
    assert PLACEHOLDER.fullmatch(node)


def test_numbers_booleans_and_none_pass_through():
    assert scrub({"n": 1, "f": 1.5, "b": True, "z": None}) == {"n": 1, "f": 1.5, "b": True, "z": None}


def test_log_records_are_scrubbed_in_message_arguments_and_traceback():
    secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUv123"
    try:
        raise ValueError(f"upstream refused key {secret}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call with %s", (secret,), sys.exc_info())
    assert RedactingFilter().filter(record)
    line = logging.Formatter().format(record)
    assert secret not in line
    assert "call with [REDACTED:openai_key:" in line
    assert "ValueError: upstream refused key [REDACTED:openai_key:" in line


def test_the_console_handler_scrubs_what_it_writes():
    consoles = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert consoles
    assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in consoles)
