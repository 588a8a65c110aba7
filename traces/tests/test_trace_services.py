"""traces.services: flagging the off-rails step, and the one golden trajectory per agent and input class."""

import pytest
from django.core.exceptions import ValidationError

from core.actors import Actor
from traces.models import Step, Trace
from traces.services import FLAG_NOTE_MAX, trace_flag, trace_golden_set, trace_unflag
from traces.signals import step_flagged

STEPS = [
    {"kind": "llm", "output": "I will look the order up."},
    {"kind": "tool", "tool": "lookup_order", "args": {"id": 7}, "output": "{}"},
    {"kind": "tool", "tool": "send_email", "args": {"to": "a@example.com"}, "output": "sent"},
]


@pytest.fixture
def agent(make_agent):
    return make_agent("support-bot")


@pytest.fixture
def make_trace(agent, make_spans, ingest):
    counter = {"n": 0}

    def make(*, input_class="refund", status="ok", agent_slug="support-bot", steps=STEPS) -> Trace:
        counter["n"] += 1
        trace_id = f"{counter['n']:032x}"
        ingest(make_spans(agent=agent_slug, trace_id=trace_id, input_class=input_class, status=status, steps=steps))
        return Trace.objects.get(trace_id=trace_id)

    return make


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    step_flagged.connect(receiver)
    yield calls
    step_flagged.disconnect(receiver)


def tool_span(trace: Trace, tool: str = "send_email") -> str:
    return Step.objects.get(trace=trace, tool_name=tool).span_id


def test_flag_stores_the_step_note_and_who_and_announces_it_after_commit(
    make_trace, responder, received, django_capture_on_commit_callbacks
):
    trace = make_trace()
    span = tool_span(trace)
    with django_capture_on_commit_callbacks(execute=True):
        returned = trace_flag(
            trace=trace,
            span_id=span,
            note="  It emailed the customer\nbefore the refund.  ",
            actor=Actor.person(responder),
        )
    stored = Trace.objects.get(pk=trace.pk)
    assert returned.flagged_span_id == stored.flagged_span_id == span
    assert stored.flag_note == "It emailed the customer before the refund."  # one line
    assert stored.flagged_by == responder.username
    assert stored.flagged_at is not None
    assert len(received) == 1
    assert received[0]["span_id"] == span
    assert received[0]["note"] == stored.flag_note
    assert received[0]["actor_label"] == responder.username
    assert received[0]["trace"].pk == trace.pk


def test_flag_is_not_announced_when_the_transaction_rolls_back(
    make_trace, received, django_capture_on_commit_callbacks
):
    trace = make_trace()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        trace_flag(trace=trace, span_id=tool_span(trace), note="Wrong tool.", actor=Actor.system("tests"))
    assert len(callbacks) == 1
    assert received == []


def test_a_new_flag_replaces_the_previous_one(make_trace):
    trace = make_trace()
    trace_flag(trace=trace, span_id=tool_span(trace, "lookup_order"), note="First guess.", actor=Actor.system("a"))
    trace_flag(trace=trace, span_id=tool_span(trace, "send_email"), note="Actually here.", actor=Actor.system("b"))
    stored = Trace.objects.get(pk=trace.pk)
    assert (stored.flagged_span_id, stored.flag_note, stored.flagged_by) == (
        tool_span(trace, "send_email"),
        "Actually here.",
        "b",
    )


@pytest.mark.parametrize(
    ("span", "note", "field"),
    [
        ("0123456789abcdef", "Not a step of this trace.", "span_id"),
        ("", "No span.", "span_id"),
        (None, "", "note"),
        (None, "   \n  ", "note"),
        (None, "x" * (FLAG_NOTE_MAX + 1), "note"),
    ],
)
def test_flag_refuses_bad_input_and_writes_nothing(make_trace, received, span, note, field):
    trace = make_trace()
    span_id = tool_span(trace) if span is None else span
    with pytest.raises(ValidationError) as exc:
        trace_flag(trace=trace, span_id=span_id, note=note, actor=Actor.system("tests"))
    assert field in exc.value.message_dict
    stored = Trace.objects.get(pk=trace.pk)
    assert (stored.flagged_span_id, stored.flag_note, stored.flagged_by, stored.flagged_at) == ("", "", "", None)
    assert received == []


def test_flag_refuses_a_step_of_another_trace(make_trace):
    one, other = make_trace(), make_trace()
    with pytest.raises(ValidationError):
        trace_flag(trace=one, span_id=tool_span(other), note="Wrong trace.", actor=Actor.system("tests"))
    assert Trace.objects.get(pk=one.pk).flagged_span_id == ""


def test_a_note_of_exactly_the_limit_is_accepted(make_trace):
    trace = make_trace()
    trace_flag(trace=trace, span_id=tool_span(trace), note="y" * FLAG_NOTE_MAX, actor=Actor.system("tests"))
    assert len(Trace.objects.get(pk=trace.pk).flag_note) == FLAG_NOTE_MAX


def test_unflag_clears_the_flag_and_is_harmless_without_one(make_trace):
    trace = make_trace()
    trace_unflag(trace=trace, actor=Actor.system("tests"))  # nothing to clear
    trace_flag(trace=trace, span_id=tool_span(trace), note="Here.", actor=Actor.system("tests"))
    returned = trace_unflag(trace=trace, actor=Actor.system("tests"))
    stored = Trace.objects.get(pk=trace.pk)
    assert returned.flagged_span_id == stored.flagged_span_id == ""
    assert (stored.flag_note, stored.flagged_by, stored.flagged_at) == ("", "", None)


def test_golden_is_one_per_agent_and_input_class(make_agent, make_trace):
    make_agent("billing-bot")
    first, second = make_trace(), make_trace()
    other_class = make_trace(input_class="cancel")
    other_agent = make_trace(agent_slug="billing-bot")
    for trace in (first, other_class, other_agent):
        trace_golden_set(trace=trace, actor=Actor.system("tests"))
    returned = trace_golden_set(trace=second, actor=Actor.system("tests"))
    assert returned.is_golden
    golden = set(Trace.objects.filter(is_golden=True).values_list("pk", flat=True))
    assert golden == {second.pk, other_class.pk, other_agent.pk}


def test_setting_the_same_golden_twice_keeps_it(make_trace):
    trace = make_trace()
    trace_golden_set(trace=trace, actor=Actor.system("tests"))
    trace_golden_set(trace=trace, actor=Actor.system("tests"))
    assert Trace.objects.get(pk=trace.pk).is_golden


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"status": "running"}, "running"), ({"input_class": ""}, "input class")]
)
def test_golden_refuses_a_running_trace_or_one_without_class(make_trace, kwargs, message):
    previous = make_trace()
    trace_golden_set(trace=previous, actor=Actor.system("tests"))
    trace = make_trace(**kwargs)
    with pytest.raises(ValidationError) as exc:
        trace_golden_set(trace=trace, actor=Actor.system("tests"))
    assert message in " ".join(exc.value.messages)
    assert not Trace.objects.get(pk=trace.pk).is_golden
    assert Trace.objects.get(pk=previous.pk).is_golden  # the old golden run is untouched
