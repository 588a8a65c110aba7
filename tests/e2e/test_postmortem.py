"""A post-mortem in Chromium: a responder starts it from the SEV1 template, writes with a live preview,
sees the attached trace's tool calls inline, saves it, publishes it and downloads the Markdown export."""

import re
from pathlib import Path

import pytest

from incidents.models import FailureClass, Incident
from traces.models import Trace

SCRIPT = "<script>window.__xss=1</script>"
SAVED = re.compile(r"^Saved \d\d:\d\d:\d\d UTC$")


@pytest.fixture
def incident_with_trace(make_agent, make_spans, ingest):
    make_agent("refund-bot", allowed_tools=["lookup_order", "refund"])
    steps = [
        {"kind": "llm", "output": "Refund everyone."},
        {"kind": "tool", "tool": "lookup_order", "args": {"order": "A-17"}},
        {"kind": "tool", "tool": "refund", "args": {"amount": 950, "note": SCRIPT}},
    ]
    ingest(make_spans(agent="refund-bot", trace_id="f" * 32, steps=steps))
    incident = Incident.objects.create(
        number=42,
        title="Refund agent refunded every order",
        severity="SEV1",
        failure_class=FailureClass.objects.get(slug="tool-misuse"),
    )
    incident.traces.add(Trace.objects.get(trace_id="f" * 32))
    return incident


def test_responder_writes_publishes_and_exports_a_post_mortem(page, live_server, login, incident_with_trace):
    login(page, role="responder")
    page.goto(f"{live_server.url}/incidents/42/postmortem/")

    # the SEV1 template is pre-selected
    assert page.get_by_label("SEV1 agent incident").is_checked()
    page.get_by_role("button", name="Start the post-mortem").click()
    page.locator("#section-what").wait_for()

    # the attached trace's tool calls show inline, in order, escaped
    calls = page.locator(".pm-tool-calls li")
    assert calls.count() == 2
    assert "lookup_order" in calls.nth(0).inner_text()
    assert "refund" in calls.nth(1).inner_text()
    assert SCRIPT in calls.nth(1).inner_text()  # shown as text
    assert page.locator(f'a[href="/traces/{"f" * 32}/?agent=refund-bot"]').first.is_visible()

    # writing a section updates the live preview, then saves in place
    what = page.locator("#section-what")
    what.locator("textarea").press_sequentially(f"It **refunded** 950. {SCRIPT}", delay=5)
    what.locator("#preview-what strong").wait_for()
    assert what.locator("#preview-what strong").inner_text() == "refunded"
    page.get_by_role("button", name="Save post-mortem").click()
    page.locator("#pm-save-status", has_text=SAVED).wait_for()
    assert page.evaluate("window.__xss") is None

    # publishing needs every section: fill the rest (plain fill), one save for all of them
    for key in ["why", "guardrails", "blast_radius", "prevention"]:
        page.locator(f"#body-{key}").fill(f"Answer for {key}.")
    page.get_by_role("button", name="Save post-mortem").click()
    page.locator("#pm-needs", has_text="Every section is written").wait_for()
    page.get_by_role("button", name="Send to review").click()
    page.get_by_role("button", name="Publish").click()
    page.locator(".badge-pm-published").wait_for()
    assert "It refunded 950." in page.locator("#section-what").inner_text()
    assert page.evaluate("window.__xss") is None

    # the Markdown export holds the section text
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download Markdown").click()
    download = download_info.value
    assert download.suggested_filename == "INC-42-postmortem.md"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert "It **refunded** 950." in text
    assert "Answer for prevention." in text
    assert "refund {" in text
