"""The responder at 3 a.m.: a title and a severity declare an incident, on a desktop and on a phone."""

import pytest

from incidents.models import Incident
from traces.models import Trace


@pytest.mark.parametrize("width", [1400, 390])
def test_responder_declares_with_only_a_title_and_a_severity(page, live_server, login, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, role="responder")
    page.goto(f"{live_server.url}/incidents/new/")
    page.fill("input[name=title]", "Support bot answering in Klingon")
    page.locator("input[name=severity][value=SEV2]").check()
    page.get_by_role("button", name="Declare incident").click()

    page.wait_for_url(f"{live_server.url}/incidents/1/")
    assert page.locator("#classify").get_by_text("Not yet classified").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing runs off a phone
    assert Incident.objects.get(number=1).failure_class is None

    # triage classifies it later from the incident page
    page.locator("#class-select").select_option("runaway-loop")
    page.get_by_role("button", name="Set class").click()
    page.wait_for_url(f"{live_server.url}/incidents/1/#status")
    assert Incident.objects.get(number=1).failure_class.slug == "runaway-loop"
    assert page.locator("#runbook .runbook-phase").count() >= 1


def test_declaring_from_a_trace_prefills_and_a_class_suggests_its_severity(
    page, live_server, login, make_agent, make_spans, ingest
):
    for i in range(30):  # enough agents that the list scrolls
        make_agent(f"bot-{i:02d}")
    make_agent("zz-refund-bot")
    ingest(make_spans(agent="zz-refund-bot", trace_id="d" * 32, steps=[{"kind": "tool", "tool": "search"}]))
    trace = Trace.objects.get(trace_id="d" * 32)
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, role="responder")
    page.goto(f"{live_server.url}/incidents/new/?trace={trace.trace_id}")

    assert page.locator("input[name=title]").input_value().startswith("zz-refund-bot:")
    checked = page.locator("input[name=agents][value=zz-refund-bot]")
    assert checked.is_checked()
    # in view inside the scrolling list, not below its fold
    box, inner = page.locator(".agent-choices").bounding_box(), checked.bounding_box()
    assert box["y"] <= inner["y"] and inner["y"] + inner["height"] <= box["y"] + box["height"]
    assert "zz-refund-bot" in page.locator("#agents-chosen").inner_text()
    assert not page.locator("input[name=severity][value=SEV1]").is_checked()  # a plain trace suggests less
    page.locator("input[name=failure_class][data-default-severity=SEV1]").first.check()
    assert page.locator("input[name=severity][value=SEV1]").is_checked()
    # a class with a milder default never lowers the severity already there
    page.locator("input[name=failure_class][data-default-severity=SEV3]").first.check()
    assert page.locator("input[name=severity][value=SEV1]").is_checked()
