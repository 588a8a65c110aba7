"""Reading a signature and its window from parameters: defaults, bad parameters named, times."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from incidents.blast_radius.signature import BlastParamError, regex_required_text, signature_parse
from incidents.blast_radius.tests.conftest import DECLARED


def test_default_window_is_24h_before_declaration_until_now(world):
    incident, _ = world
    now = DECLARED + timedelta(hours=3)
    _sig, since, until = signature_parse({"tool": "x"}, incident=incident, now=now)
    assert since == DECLARED - timedelta(hours=24)
    assert until == now


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "signature"),
        ({"tool": "x", "since": "yesterday"}, "since"),
        ({"tool": "x", "until": "2025-13-45T00:00"}, "until"),
        ({"tool": "x", "since": "2025-03-10T12:00:00Z", "until": "2025-03-10T11:00:00Z"}, "until"),
        ({"args": "re:(unclosed"}, "args"),
        ({"agent": "nobody"}, "agent"),
        ({"action_hash": "not-hex!"}, "action_hash"),
        ({"trace": "f" * 32}, "trace"),
    ],
)
def test_bad_parameters_are_named(world, params, param):
    incident, _ = world
    with pytest.raises(BlastParamError) as exc:
        signature_parse(params, incident=incident)
    assert exc.value.param == param


def test_trace_without_a_flag_is_rejected(world):
    incident, runs = world
    with pytest.raises(BlastParamError, match="no flagged step"):
        signature_parse({"trace": runs["r2"].trace_id}, incident=incident)


def test_naive_times_are_utc(world):
    incident, _ = world
    _sig, since, _until = signature_parse({"tool": "x", "since": "2025-03-09T12:00"}, incident=incident)
    assert since == datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    assert since.tzinfo is not None and timezone.is_aware(since)


def test_an_unencoded_plus_in_a_time_is_read_as_an_offset(world):
    incident, _ = world
    _sig, since, _until = signature_parse({"tool": "x", "since": "2025-03-09T12:00:00 01:00"}, incident=incident)
    assert since == datetime(2025, 3, 9, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pattern", "needed"),
    [
        ("refund.*[0-9]{4}", 6),
        (r'"amount": 9\d\d', 11),
        ("(abc|defg)x", 3),
        ("(ab|defg)x", 2),
        ("[a-z]+ok", 2),
        ("^nothing$", 7),
        ("(?:vip){2,}", 3),
        ("(?:vip)?x", 1),
        (".*", 0),
    ],
)
def test_the_literal_text_every_match_needs(pattern, needed):
    assert regex_required_text(pattern) == needed


@pytest.mark.parametrize("args", ["re:.*", r"re:\d+", "re:[a-z]{5,}", "re:(ab|cd)", "ab"])
def test_an_argument_search_no_index_can_serve_is_refused_unless_a_tool_narrows_it(world, args):
    incident, _ = world
    with pytest.raises(BlastParamError, match="tool or an action hash") as exc:
        signature_parse({"args": args}, incident=incident)
    assert exc.value.param == "args"
    signature, _since, _until = signature_parse({"args": args, "tool": "lookup_order"}, incident=incident)
    assert signature.args == args


@pytest.mark.parametrize("args", ["re:refund.*[0-9]{4}", "re:(vip|override)", "vip"])
def test_an_argument_search_with_indexable_text_is_taken_alone(world, args):
    incident, _ = world
    signature, _since, _until = signature_parse({"args": args}, incident=incident)
    assert signature.args == args
