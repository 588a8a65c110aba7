"""Reading the vendors' payloads: severity, links, JSON paths (no database)."""

import pytest
from django.core.exceptions import ValidationError

from incidents.integrations.inbound.payloads import (
    alertmanager_parse,
    path_get,
    path_parse,
    safe_link,
    severity_of,
)
from incidents.integrations.inbound.tests.samples import sample


@pytest.mark.parametrize(
    ("value", "severity"),
    [("critical", "SEV1"), ("warning", "SEV2"), ("High", "SEV2"), ("info", "SEV3"), ("low", "SEV3"), ("", "SEV2")],
)
def test_severity_label_maps_to_sev(value, severity):
    assert severity_of(value) == severity


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "data:text/html,<b>x</b>", "//evil.example", "ftp://x.example/a", "http://", "x" * 3000],
)
def test_only_http_links_are_kept(link):
    assert safe_link(link) == ""


def test_path_parse_reads_dots_indexes_and_quoted_names():
    steps = path_parse("$.alert.labels['agent name'][0].x", "title")
    assert steps == ["alert", "labels", "agent name", 0, "x"]
    assert path_get({"alert": {"labels": {"agent name": [{"x": "y"}]}}}, steps) == "y"
    with pytest.raises(KeyError):
        path_get({"alert": []}, steps)


def test_an_alert_without_a_fingerprint_is_identified_by_its_labels():
    body = sample("alertmanager")
    del body["alerts"][0]["fingerprint"]
    first = alertmanager_parse(body)[0].fingerprint
    body["alerts"][0]["annotations"]["summary"] = "worded differently"
    assert alertmanager_parse(body)[0].fingerprint == first
    body["alerts"][0]["labels"]["instance"] = "https://other.example.org"
    assert alertmanager_parse(body)[0].fingerprint != first


def test_errors_name_the_nested_field():
    body = sample("alertmanager")
    body["alerts"][0]["labels"] = ["not", "a", "map"]
    with pytest.raises(ValidationError) as exc:
        alertmanager_parse(body)
    assert "alerts[0].labels" in exc.value.message_dict
