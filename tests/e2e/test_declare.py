"""Declaring from a trace in Chromium: the form arrives pre-filled, and the incident page opens with its runbook."""

import pytest

from incidents.models import Incident
from traces.models import Trace


@pytest.fixture
def looping_trace(make_agent, make_spans, ingest):
    make_agent("refund-bot")
    make_agent("other-bot")
    steps = [{"kind": "tool", "tool": "search", "args": {"q": "order 1"}}] * 3
    ingest(make_spans(agent="refund-bot", trace_id="c" * 32, steps=steps))
    return Trace.objects.get(trace_id="c" * 32)


def test_responder_declares_an_incident_from_a_trace(page, live_server, login, looping_trace):
    user = login(page, role="responder")
    page.goto(f"{live_server.url}/traces/{looping_trace.trace_id}/")
    page.get_by_role("link", name="Declare incident").click()
    page.wait_for_url("**/incidents/new/?trace=*")

    # pre-filled with the trace and its agent, and the declarer as commander
    assert page.locator("input[name=traces]").input_value() == "c" * 32
    assert page.locator("input[name=agents][value=refund-bot]").is_checked()
    assert not page.locator("input[name=agents][value=other-bot]").is_checked()
    assert page.locator("select[name=commander]").input_value() == user.username
    assert "corrupted data or exposed sensitive information" in page.locator("#severity-field").inner_text()

    page.fill("input[name=title]", "Refund agent looping on search")
    page.locator("input[name=severity][value=SEV1]").check()
    page.locator("input[name=failure_class][value=runaway-loop]").check()
    page.get_by_role("button", name="Declare incident").click()

    page.wait_for_url(f"{live_server.url}/incidents/1/")
    assert "INC-1" in page.locator("h1").inner_text()
    runbook = page.locator("#runbook")
    assert runbook.get_by_text("Page the owning team").is_visible()
    assert runbook.locator(".runbook-phase").count() >= 2
    traces = page.locator("#traces")
    assert traces.locator(f"a[href='/traces/{'c' * 32}/?agent=refund-bot']").count() == 1
    assert "refund-bot" in page.locator("#agents").inner_text()

    incident = Incident.objects.get(number=1)
    assert incident.severity == "SEV1" and incident.commander == user

    # tick the first step in place (htmx): it lands on the timeline without a reload
    page.evaluate("window.__sameDocument = true")
    runbook.locator("button.rb-check").first.click()
    page.locator("#runbook li.done").first.wait_for()
    page.locator("#timeline li.tl-runbook").wait_for()
    assert page.evaluate("window.__sameDocument") is True
