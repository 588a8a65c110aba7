"""Post-mortem selectors: attached traces as excerpts around the flagged step or the last tool calls."""

from incidents.postmortems.selectors import trace_excerpt
from traces.models import Trace


def test_unflagged_trace_shows_its_last_five_tool_calls_and_every_call_in_order(trace):
    excerpt = trace_excerpt(trace=trace)
    assert not excerpt.flagged
    assert [s.tool_name for s in excerpt.steps] == ["search"] * 4 + ["refund"]
    assert [c.tool_name for c in excerpt.tool_calls] == ["search"] * 6 + ["refund"]
    assert '"q": "order 0"' in excerpt.tool_calls[0].args_text


def test_flagged_trace_shows_three_steps_before_and_two_after(trace):
    steps = list(trace.steps.order_by("started_at", "id"))
    flagged = steps[5]  # the root is first
    Trace.objects.filter(pk=trace.pk).update(flagged_span_id=flagged.span_id, flag_note="went wrong here")
    trace.refresh_from_db()
    excerpt = trace_excerpt(trace=trace)
    assert excerpt.flagged
    spans = [s.span_id for s in excerpt.steps]
    assert spans == [s.span_id for s in steps[2:8]]
    assert [s.flagged for s in excerpt.steps] == [False, False, False, True, False, False]
