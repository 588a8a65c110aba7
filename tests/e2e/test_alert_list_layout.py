"""The alerts page in Chromium at a desktop and a phone width: nothing runs off to the side, and
a row's Acknowledge and Resolve buttons are on screen."""

import pytest

from incidents.alerts.services import alert_raise
from traces.models import Trace

LONG_TITLE = "Repeated identical calls to lookup_order with the same arguments " * 6
UNBROKEN = "x" * 300


@pytest.fixture
def long_alert(make_agent, make_spans, ingest):
    agent = make_agent("a-rather-long-agent-slug-for-the-support-desk-fleet")
    ingest(make_spans(agent=agent.slug, trace_id="b2" * 16, steps=[{"kind": "tool", "tool": "search"}]))
    alert, _ = alert_raise(
        detector="action_repeat_with_a_long_detector_name",
        agent=agent,
        fingerprint="f-long",
        title=LONG_TITLE + UNBROKEN,
        trace=Trace.objects.get(trace_id="b2" * 16),
        span_id="",
        failure_class_slug="runaway-loop",
        details={"args": {"order_id": UNBROKEN, "note": LONG_TITLE}, "count": 50},
    )
    return alert


def _fits(page):
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def _in_viewport_horizontally(page, locator):
    box = locator.bounding_box()
    width = page.evaluate("() => window.innerWidth")
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.mark.parametrize("width", [1400, 390])
def test_alert_actions_on_screen_without_sideways_scroll(page, live_server, login, long_alert, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, role="responder")
    page.goto(f"{live_server.url}/incidents/alerts/")
    row = page.locator(f"#alert-{long_alert.pk}")
    row.wait_for()
    assert _fits(page)
    for name in ("Acknowledge", "Resolve"):
        button = row.get_by_role("button", name=name)
        button.scroll_into_view_if_needed()
        assert _in_viewport_horizontally(page, button), name
    # The table itself does not scroll sideways inside its box either.
    assert page.evaluate(
        "() => { const w = document.querySelector('#alerts').closest('.table-wrap');"
        " return w.scrollWidth <= w.clientWidth; }"
    )
    # The full title is still there for whoever hovers it.
    assert row.locator(".alert-title").get_attribute("title") == long_alert.title
