import pytest

from core.actors import Actor

TRACE_ID = "e" * 32
ROOT_INPUT = "Refund order A-17 <script>alert(1)</script>, I was charged twice"


@pytest.fixture
def refund_trace(make_agent, make_spans, ingest, responder):
    """A finished trace of "refund-bot" that called issue_refund twice with the same arguments;
    the first refund is flagged as the off-rails step."""
    from traces.models import Step, Trace
    from traces.services import trace_flag

    make_agent("refund-bot", allowed_tools=["lookup_order", "issue_refund"])
    refund = {"kind": "tool", "tool": "issue_refund", "args": {"amount": 900, "order_id": "A-17"}, "output": "ok"}
    ingest(
        make_spans(
            agent="refund-bot",
            trace_id=TRACE_ID,
            input_class="refund-request",
            root_input=ROOT_INPUT,
            steps=[
                {"kind": "llm", "output": "I will refund"},
                {"kind": "tool", "tool": "lookup_order", "args": {"order_id": "A-17"}},
                refund,
                dict(refund),
            ],
        )
    )
    trace = Trace.objects.get(trace_id=TRACE_ID)
    step = Step.objects.filter(trace=trace, tool_name="issue_refund").order_by("started_at").first()
    return trace_flag(
        trace=trace, span_id=step.span_id, note="Refunded again after the first refund", actor=Actor.person(responder)
    )
