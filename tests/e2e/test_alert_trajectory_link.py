"""An alert's Trajectory link in Chromium opens the viewer at the offending step, in view and
highlighted, from the alerts page and from the dashboard's feed."""

import re

import pytest
from playwright.sync_api import expect

from incidents.alerts.services import alert_raise
from traces.models import Step, Trace

TRACE_ID = "a1" * 16


@pytest.fixture
def alert_on_step_10(make_agent, make_spans, ingest):
    agent = make_agent("deep-bot")
    # 120 distinct steps: the viewer opens at the end, far from step #10.
    steps = [
        {"kind": "tool", "tool": "search", "args": {"q": f"query {i}"}, "output": f"result {i}"} for i in range(120)
    ]
    ingest(make_spans(agent="deep-bot", trace_id=TRACE_ID, steps=steps))
    trace = Trace.objects.get(trace_id=TRACE_ID)
    step = Step.objects.filter(trace=trace, kind="tool").order_by("started_at", "span_id")[9]
    alert, _ = alert_raise(
        detector="action_repeat",
        agent=agent,
        fingerprint="f-deep",
        title="Step ten went off the rails",
        trace=trace,
        span_id=step.span_id,
    )
    return alert, step


def _assert_opened_at(page, step):
    target = page.locator(f"#step-{step.span_id}")
    expect(target).to_have_class(re.compile(r"\bis-cursor\b"), timeout=5000)
    expect(target).to_be_in_viewport()


def test_alerts_page_trajectory_link_opens_at_the_offending_step(page, live_server, login, alert_on_step_10):
    alert, step = alert_on_step_10
    login(page, role="responder")
    page.goto(f"{live_server.url}/incidents/alerts/")
    page.locator(f"#alert-{alert.pk}").get_by_role("link", name="Trajectory").click()
    page.wait_for_url(f"**/traces/{TRACE_ID}/**")
    _assert_opened_at(page, step)


def test_dashboard_feed_trajectory_link_opens_at_the_offending_step(page, live_server, login, alert_on_step_10):
    _, step = alert_on_step_10
    login(page, role="responder")
    page.locator("#open-alerts tr", has_text="Step ten went off the rails").get_by_role(
        "link", name="Trajectory"
    ).click()
    page.wait_for_url(f"**/traces/{TRACE_ID}/**")
    _assert_opened_at(page, step)
