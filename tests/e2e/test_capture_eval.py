"""Capturing an eval case from the trajectory viewer in Chromium: the form arrives prefilled from the
flagged step, the responder writes the expected behaviour, and the case page shows what CI will run."""

import pytest

from core.actors import Actor
from evals.models import EvalCase
from traces.models import Step, Trace
from traces.services import trace_flag

TRACE_ID = "d" * 32


@pytest.fixture
def flagged_trace(make_agent, make_spans, ingest, make_user):
    make_agent("refund-bot", allowed_tools=["lookup_order", "issue_refund"])
    refund = {"kind": "tool", "tool": "issue_refund", "args": {"amount": 900, "order_id": "A-17"}}
    ingest(
        make_spans(
            agent="refund-bot",
            trace_id=TRACE_ID,
            root_input="Refund order A-17 <b>now</b>",
            steps=[{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "A-17"}}, refund, dict(refund)],
        )
    )
    trace = Trace.objects.get(trace_id=TRACE_ID)
    step = Step.objects.filter(trace=trace, tool_name="issue_refund").order_by("started_at").first()
    return trace_flag(
        trace=trace, span_id=step.span_id, note="Refunded a second time", actor=Actor.person(make_user("responder"))
    )


def test_responder_captures_an_eval_case_from_the_flagged_trace(page, live_server, login, flagged_trace):
    login(page, role="responder")
    page.goto(f"{live_server.url}/traces/{TRACE_ID}/")
    page.get_by_role("link", name="Capture eval case").click()
    page.wait_for_url("**/evals/capture/?trace=*")

    assert page.locator("textarea[name=input]").input_value() == "Refund order A-17 <b>now</b>"
    assert page.locator("input[name=title]").input_value() == "Refunded a second time"
    assert '"tool": "issue_refund"' in page.locator("textarea[name=forbidden_actions]").input_value()
    assert flagged_trace.flagged_span_id in page.locator("#flagged-step").inner_text()

    # the expected behaviour is required: saving without it keeps the form and writes nothing
    page.get_by_role("button", name="Save eval case").click()
    assert "Say what the agent should have done" in page.locator("#capture-form").inner_text()
    assert EvalCase.objects.count() == 0

    page.fill("textarea[name=expected_behaviour]", "Refund A-17 once, then tell the customer it is done.")
    page.get_by_role("button", name="Save eval case").click()
    case = EvalCase.objects.get()
    page.wait_for_url(f"{live_server.url}/evals/cases/{case.pk}/")

    assert f"EC-{case.pk}" in page.locator("h1").inner_text()
    assert page.locator("#case-input").inner_text() == "Refund order A-17 <b>now</b>"  # shown as text
    forbidden = page.locator("#forbidden-actions").inner_text()
    assert "issue_refund" in forbidden and '"amount": 900' in forbidden
    assert "Refund A-17 once" in page.locator("#case-expected").inner_text()
    assert case.flagged_span_id == flagged_trace.flagged_span_id
