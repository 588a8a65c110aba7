"""The viewer's actions on a trajectory: the diff against the golden run, live polling, flagging the
off-rails step, and the header's run and controls."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from core.actors import Actor
from traces.models import Step, Trace
from traces.services import trace_flag, trace_golden_set

from .conftest import T0
from .viewer_helpers import HX, SCRIPT, alternating, assert_inert, detail, positions, step_ids

# --- golden diff ----------------------------------------------------------------------------------


def test_diff_marks_inserted_missing_and_changed_calls(trace_of, viewer_client):
    golden = trace_of(
        [
            {"kind": "tool", "tool": "search", "args": {"q": "refund policy"}},
            {"kind": "tool", "tool": "lookup_order", "args": {"id": 7}},
            {"kind": "tool", "tool": "refund", "args": {"order": 7, "amount": 10}},
        ],
        input_class="refund",
    )
    trace_golden_set(trace=golden, actor=Actor.system("tests"))
    trace = trace_of(
        [
            {"kind": "tool", "tool": "search", "args": {"q": "refund policy"}},
            {"kind": "tool", "tool": "refund", "args": {"order": 7, "amount": 1000}},
            {"kind": "tool", "tool": "send_email", "args": {"to": "x@example.com"}},
        ],
        input_class="refund",
    )
    response = viewer_client.get(reverse("traces:trace-diff", args=[trace.trace_id]))
    assert response.status_code == 200
    diff = response.context["diff"]
    assert [(r.kind, r.golden and r.golden.tool_name, r.this and r.this.tool_name) for r in diff.rows] == [
        ("same", "search", "search"),
        ("missing", "lookup_order", None),
        ("changed", "refund", "refund"),
        ("inserted", None, "send_email"),
    ]
    assert diff.rows[2].changed_keys == ["amount"]
    html = response.content.decode()
    for kind in ("diff-same", "diff-missing", "diff-changed", "diff-inserted"):
        assert f"diff-row {kind}" in html
    assert "not called in this run" in html and "not in the golden run" in html
    # Each call's arguments are shown as text (escaped), on both sides.
    assert "{&quot;amount&quot;: 1000, &quot;order&quot;: 7}" in html
    assert "{&quot;amount&quot;: 10, &quot;order&quot;: 7}" in html


def test_diff_shows_an_honest_empty_state(trace_of, viewer_client):
    no_class = trace_of([{"kind": "tool", "tool": "search"}])
    assert (
        "has no input class"
        in viewer_client.get(reverse("traces:trace-diff", args=[no_class.trace_id])).content.decode()
    )
    lonely = trace_of([{"kind": "tool", "tool": "search"}], input_class="billing")
    html = viewer_client.get(reverse("traces:trace-diff", args=[lonely.trace_id])).content.decode()
    assert "No golden run for “billing” yet" in html
    # It points at the runs that went right, filtered, and the list takes that filter.
    assert "input_class=billing&amp;status=ok" in html
    listed = viewer_client.get(reverse("traces:trace-list"), {"input_class": "billing"}).content.decode()
    assert lonely.trace_id in listed and no_class.trace_id not in listed
    trace_golden_set(trace=lonely, actor=Actor.system("tests"))
    html = viewer_client.get(reverse("traces:trace-diff", args=[lonely.trace_id])).content.decode()
    assert "This trace is the golden run" in html


def test_responder_marks_a_trace_golden_and_viewer_cannot(trace_of, responder_client, viewer_client):
    old = trace_of([{"kind": "tool", "tool": "search"}], input_class="refund")
    trace_golden_set(trace=old, actor=Actor.system("tests"))
    trace = trace_of([{"kind": "tool", "tool": "search"}], input_class="refund")
    url = reverse("traces:trace-golden", args=[trace.trace_id])
    assert viewer_client.post(url).status_code == 403
    assert not Trace.objects.get(pk=trace.pk).is_golden
    assert "Mark golden" not in viewer_client.get(detail(trace.trace_id)).content.decode()
    assert "Mark golden for “refund”" in responder_client.get(detail(trace.trace_id)).content.decode()
    response = responder_client.post(url)
    assert response.status_code == 302
    assert Trace.objects.get(pk=trace.pk).is_golden
    assert not Trace.objects.get(pk=old.pk).is_golden
    running = trace_of([{"kind": "llm"}], input_class="refund", status="running")
    responder_client.post(reverse("traces:trace-golden", args=[running.trace_id]))
    assert not Trace.objects.get(pk=running.pk).is_golden


# --- a running trace ------------------------------------------------------------------------------


def test_running_trace_polls_for_newer_steps_only(trace_of, make_spans, ingest, viewer_client):
    trace = trace_of(alternating(3), status="running")
    page = viewer_client.get(detail(trace.trace_id))
    html = page.content.decode()
    assert 'hx-trigger="every 2s"' in html
    poll = (
        re.search(r'hx-get="(/traces/[0-9a-f]+/steps/\?agent=support-bot&amp;poll=1&amp;after=[0-9_]+)"', html)
        .group(1)
        .replace("&amp;", "&")
    )
    assert viewer_client.get(poll, headers=HX).status_code == 204  # nothing new yet
    later = make_spans(
        agent="support-bot",
        trace_id=trace.trace_id,
        start=T0 + timedelta(seconds=5),
        steps=alternating(2),
        status="running",
    )
    ingest(later)
    response = viewer_client.get(poll, headers=HX)
    assert response.status_code == 200
    assert step_ids(response.content.decode()) == [s.span_id for s in later]
    assert positions(response) == [4, 5]
    assert 'id="poller"' in response.content.decode()  # still running: keeps polling from the new end
    assert 'id="trace-totals" hx-swap-oob="true"' in response.content.decode()
    # the run ends: the root span arrives, the last poll says so and stops
    next_poll = re.search(
        r'hx-get="(/traces/[0-9a-f]+/steps/\?agent=support-bot&amp;poll=1&amp;after=[0-9_]+)"',
        response.content.decode(),
    ).group(1)
    done = make_spans(agent="support-bot", trace_id=trace.trace_id, start=T0, steps=[], status="ok")
    ingest(done)
    final = viewer_client.get(next_poll.replace("&amp;", "&"), headers=HX).content.decode()
    assert "The run has finished" in final
    assert 'id="poller"' not in final
    assert "every 2s" not in viewer_client.get(detail(trace.trace_id)).content.decode()


def test_a_running_trace_without_steps_yet_still_polls(agent, viewer_client, make_spans, ingest):
    spans = make_spans(agent="support-bot", trace_id="c" * 32, steps=[{"kind": "llm"}], status="running")
    ingest(spans)
    Step.objects.filter(trace__trace_id="c" * 32).delete()
    html = viewer_client.get(detail("c" * 32)).content.decode()
    assert "No steps have arrived yet" in html
    assert '?agent=support-bot&amp;poll=1"' in html


# --- flagging -------------------------------------------------------------------------------------


def test_viewer_sees_no_flag_control_and_cannot_flag(trace_of, viewer_client, responder_client):
    trace = trace_of(alternating(3))
    span = Step.objects.filter(trace=trace, kind="tool").first().span_id
    html = viewer_client.get(detail(trace.trace_id)).content.decode()
    assert 'id="flag-form"' not in html and "flag-link" not in html and "Kill this agent" not in html
    assert 'id="flag-form"' in responder_client.get(detail(trace.trace_id)).content.decode()
    url = reverse("traces:trace-flag", args=[trace.trace_id])
    for headers in ({}, HX):
        assert viewer_client.post(url, {"span_id": span, "note": "Here."}, headers=headers).status_code == 403
    assert viewer_client.get(url).status_code == 403
    assert Trace.objects.get(pk=trace.pk).flagged_span_id == ""


def test_responder_flags_a_step_with_htmx(trace_of, responder_client, responder):
    trace = trace_of(alternating(5))
    first, second = Step.objects.filter(trace=trace, kind="tool").order_by("started_at")[:2]
    trace_flag(trace=trace, span_id=first.span_id, note="Earlier guess.", actor=Actor.system("tests"))
    url = reverse("traces:trace-flag", args=[trace.trace_id])
    response = responder_client.post(
        url, {"span_id": second.span_id, "note": "It searched again " + SCRIPT}, headers=HX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert_inert(html)
    assert (
        f'<span class="flagmark" id="flagmark-{first.span_id}" hx-swap-oob="true"></span>' in html
    )  # old mark cleared
    assert f'id="flagmark-{second.span_id}" hx-swap-oob="true"><span class="badge badge-flag">' in html
    assert 'id="flag-box" class="flag-box is-flagged" hx-swap-oob="true"' in html
    assert "fb:notice" in response["HX-Trigger"]
    stored = Trace.objects.get(pk=trace.pk)
    assert (stored.flagged_span_id, stored.flagged_by) == (second.span_id, responder.username)
    assert stored.flag_note == "It searched again " + SCRIPT
    page = responder_client.get(detail(trace.trace_id)).content.decode()
    assert "⚑ flagged" in page and "went off the rails" in page
    assert page.count('<span class="badge badge-flag">⚑ off the rails</span>') == 1
    assert "⚑ flagged" in responder_client.get(reverse("traces:trace-list")).content.decode()


def test_responder_flags_without_javascript(trace_of, responder_client):
    trace = trace_of(alternating(3))
    span = Step.objects.filter(trace=trace, kind="tool").first().span_id
    url = reverse("traces:trace-flag", args=[trace.trace_id])
    form = responder_client.get(url, {"span_id": span})
    assert form.status_code == 200 and f'value="{span}"' in form.content.decode()
    response = responder_client.post(url, {"span_id": span, "note": "Wrong order id."})
    assert response.status_code == 302
    assert response["Location"] == f"{detail(trace.trace_id)}?agent=support-bot&at={span}#step-{span}"
    assert Trace.objects.get(pk=trace.pk).flag_note == "Wrong order id."
    unflag = responder_client.post(reverse("traces:trace-unflag", args=[trace.trace_id]))
    assert unflag.status_code == 302
    assert Trace.objects.get(pk=trace.pk).flagged_span_id == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"span_id": "0123456789abcdef", "note": "Here."}, "This trace has no step with span id"),
        ({"span_id": "", "note": "Here."}, "This trace has no step with span id"),
        ({"note": ""}, "Say in one sentence why"),
        ({"note": "   "}, "Say in one sentence why"),
        ({"note": "n" * 501}, "At most 500 characters"),
    ],
)
def test_flag_validation_errors_write_nothing(trace_of, responder_client, data, message):
    trace = trace_of(alternating(3))
    span = Step.objects.filter(trace=trace, kind="tool").first().span_id
    data = {"span_id": span, **data}
    url = reverse("traces:trace-flag", args=[trace.trace_id])
    for headers in ({}, HX):
        response = responder_client.post(url, data, headers=headers)
        assert response.status_code == 422
        body = response.content.decode()
        assert message in body
        assert ("<html" in body) == (not headers)  # htmx gets the form back in place
        assert 'id="flag-form"' in body
    stored = Trace.objects.get(pk=trace.pk)
    assert (stored.flagged_span_id, stored.flag_note, stored.flagged_at) == ("", "", None)


# --- header and actions ---------------------------------------------------------------------------


def test_header_shows_the_run_and_its_actions(trace_of, responder_client):
    trace = trace_of(
        [{"kind": "llm", "tokens_in": 1200, "tokens_out": 345, "cost": 0.0125}],
        user_id="user-42",
        session_id="sess-9",
        input_class="refund",
        model_version="gpt-x-2",
        prompt_version="p12",
    )
    html = responder_client.get(detail(trace.trace_id)).content.decode()
    for text in ("user-42", "sess-9", "refund", "gpt-x-2", "p12", "1,200", "345", "$0.01", "badge-trace-ok"):
        assert text in html, text
    assert f'href="/incidents/new/?trace={trace.trace_id}&amp;agent=support-bot"' in html
    assert 'action="/agents/support-bot/kill"' in html
    assert f'name="next" value="/traces/{trace.trace_id}/?agent=support-bot"' in html
    assert reverse("traces:trace-diff", args=[trace.trace_id]) in html
    assert "<kbd>j</kbd>" in html and "<kbd>/</kbd>" in html


def test_kill_from_the_trace_returns_to_it_and_then_shows_killed(trace_of, responder_client):
    trace = trace_of([{"kind": "llm"}])
    response = responder_client.post("/agents/support-bot/kill", {"next": detail(trace.trace_id)})
    assert response.status_code == 302
    assert response["Location"] == detail(trace.trace_id)
    html = responder_client.get(detail(trace.trace_id)).content.decode()
    assert "Kill this agent" not in html
    assert "Agent killed" in html


def test_trace_list_shows_flagged_and_golden_badges(trace_of, viewer_client):
    trace = trace_of([{"kind": "tool", "tool": "search"}], input_class="refund")
    trace_golden_set(trace=trace, actor=Actor.system("tests"))
    trace_flag(
        trace=trace,
        span_id=Step.objects.get(trace=trace, kind="tool").span_id,
        note="Here it broke.",
        actor=Actor.system("t"),
    )
    html = viewer_client.get(reverse("traces:trace-list")).content.decode()
    assert "⚑ flagged" in html and "Here it broke." in html
    assert "badge-golden" in html


def test_the_diff_never_suggests_the_failing_run_as_golden(trace_of, viewer_client):
    failed = trace_of([{"kind": "tool", "tool": "search"}], input_class="billing", status="error")
    html = viewer_client.get(reverse("traces:trace-diff", args=[failed.trace_id])).content.decode()
    assert "not this one: it is the run that went wrong" in html


def test_diff_page_shows_a_loop_of_identical_calls_as_one_row_that_lists_the_others(trace_of, viewer_client):
    loop_call = {"kind": "tool", "tool": "search", "args": {"q": "order 9"}}
    golden_run = trace_of([loop_call], input_class="looping")
    trace_golden_set(trace=golden_run, actor=Actor.system("tests"))
    trace = trace_of([loop_call] * 50, input_class="looping")
    html = viewer_client.get(reverse("traces:trace-diff", args=[trace.trace_id])).content.decode()
    assert html.count('class="diff-row') == 2  # one "same", then the 49 inserted as one row
    assert "×49 identical" in html
    assert html.count('<details class="diff-repeat">') == 1
    assert "49 inserted" in html  # the counts still count every call
