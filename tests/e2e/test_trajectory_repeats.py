"""A 50-step loop in the trajectory viewer (Chromium): one row "x50 identical" that expands, and
j/k still walk the steps."""

import re

import pytest
from playwright.sync_api import expect

from traces.models import Step, Trace

TRACE_ID = "c3" * 16


@pytest.fixture
def loop_trace(make_agent, make_spans, ingest):
    make_agent("loop-bot")
    steps = [{"kind": "llm", "name": "plan", "output": "I will look up the order."}]
    steps += [{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "A-17"}, "output": "pending"}] * 50
    steps += [{"kind": "llm", "name": "answer", "output": "Still pending, sorry."}]
    ingest(make_spans(agent="loop-bot", trace_id=TRACE_ID, steps=steps))
    return Trace.objects.get(trace_id=TRACE_ID)


def test_a_50_step_loop_shows_one_row_that_expands(page, live_server, login, loop_trace):
    login(page, role="responder")
    page.goto(f"{live_server.url}/traces/{TRACE_ID}/?agent=loop-bot")
    tool_steps = page.locator("#steps > li.step.kind-tool")
    expect(tool_steps).to_have_count(50)
    expect(page.locator("#steps > li.step.kind-tool:visible")).to_have_count(1)
    toggle = page.get_by_role("button", name="×50 identical")
    expect(toggle).to_have_count(1)
    expect(toggle).to_have_attribute("aria-expanded", "false")

    # j/k walk over the run as one row: from the last step, k lands on the run's first call.
    page.locator("body").press("k")
    expect(page.locator("#steps > li.step.is-cursor")).to_have_class(re.compile("step-repeat-head"))

    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#steps > li.step.kind-tool:visible")).to_have_count(50)
    page.locator("body").press("j")  # the next identical call is now a step of its own
    expect(page.locator("#steps > li.step.is-cursor")).to_have_class(re.compile("step-collapsed"))
    toggle.click()
    expect(page.locator("#steps > li.step.kind-tool:visible")).to_have_count(1)


def test_a_link_to_a_step_inside_a_run_opens_the_run_at_that_step(page, live_server, login, loop_trace):
    step = Step.objects.filter(trace=loop_trace, tool_name="lookup_order").order_by("started_at", "id")[20]
    login(page, role="responder")
    page.goto(f"{live_server.url}/traces/{TRACE_ID}/?agent=loop-bot&at={step.span_id}#step-{step.span_id}")
    target = page.locator(f"#step-{step.span_id}")
    expect(target).to_have_class(re.compile(r"\bis-cursor\b"))
    expect(target).to_be_in_viewport()
    expect(page.locator(".repeat-toggle")).to_have_attribute("aria-expanded", "true")
