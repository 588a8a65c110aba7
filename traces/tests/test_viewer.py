"""The trajectory viewer /traces/<trace_id>/: order and depth, opening at the end, pages, loops, search,
full text, and that trace content stays inert."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from core.actors import Actor
from traces.models import Step, Trace
from traces.services import trace_flag, trace_golden_set

from .conftest import T0
from .viewer_helpers import HX, IMG, SCRIPT, alternating, assert_inert, detail, positions, step_ids

# --- order, depth, the end ------------------------------------------------------------------------


def test_steps_are_in_start_order_with_depth_from_parent_spans(make_spans, ingest, agent, viewer_client):
    spans = make_spans(
        agent="support-bot",
        trace_id="a" * 32,
        start=T0,
        steps=[
            {"kind": "agent", "name": "planner"},
            {"kind": "llm"},
            {"kind": "tool", "tool": "search"},
            {"kind": "llm"},
        ],
    )
    _root, planner, llm, tool, _last = spans
    llm.parent_span_id = planner.span_id
    tool.parent_span_id = llm.span_id
    ingest(spans[::-1])  # arrival order does not matter
    response = viewer_client.get(detail("a" * 32))
    assert response.status_code == 200
    steps = response.context["steps"]
    assert [s.span_id for s in steps] == [s.span_id for s in spans]
    assert [s.depth for s in steps] == [0, 1, 2, 3, 1]
    assert [s.position for s in steps] == [1, 2, 3, 4, 5]
    html = response.content.decode()
    assert step_ids(html) == [s.span_id for s in spans]
    assert f'data-span="{tool.span_id}" data-depth="3"' in html
    assert [s.children for s in steps] == [2, 1, 1, 0, 0]  # fold controls where there is something to fold


def test_a_long_trace_opens_at_the_end_with_the_last_five_tool_calls_marked(
    trace_of, viewer_client, django_assert_max_num_queries
):
    trace = trace_of(alternating(399))  # + the root span = 400 steps
    with django_assert_max_num_queries(12):
        response = viewer_client.get(detail(trace.trace_id))
    assert positions(response) == list(range(251, 401))  # the last 150
    assert response.context["mode"] == "end"
    html = response.content.decode()
    tool_steps = [s for s in response.context["steps"] if s.tool_name]
    assert [s.recent_tool for s in tool_steps[-6:]] == [0, 5, 4, 3, 2, 1]
    for step in tool_steps[-5:]:
        assert re.search(rf'<li id="step-{step.span_id}" class="[^"]*step-recent', html)
    assert "tool call −1" in html
    assert "the run opens at its end" in html
    assert 'src="/static/js/trajectory.js"' in html
    # the earlier steps load with htmx, 200 at a time, each page with the next control
    link = re.search(r'hx-get="(/traces/[0-9a-f]+/steps/\?agent=support-bot&amp;before=[0-9_]+)"', html).group(1)
    page = viewer_client.get(link.replace("&amp;", "&"), headers=HX)
    assert page.status_code == 200
    assert "<html" not in page.content.decode()
    assert positions(page) == list(range(51, 251))
    link = re.search(
        r'hx-get="(/traces/[0-9a-f]+/steps/\?agent=support-bot&amp;before=[0-9_]+)"', page.content.decode()
    ).group(1)
    first = viewer_client.get(link.replace("&amp;", "&"), headers=HX)
    assert positions(first) == list(range(1, 51))
    assert "load-earlier" not in first.content.decode()  # nothing before the first step


def test_earlier_pages_work_without_javascript(trace_of, viewer_client):
    trace = trace_of(alternating(199))
    html = viewer_client.get(detail(trace.trace_id)).content.decode()
    href = re.search(r'href="(/traces/[0-9a-f]+/\?agent=support-bot&amp;before=[0-9_]+)"', html).group(1)
    href = href.replace("&amp;", "&")
    response = viewer_client.get(href)
    assert positions(response) == list(range(1, 51))
    assert b"<html" in response.content
    # the fragment URL opened directly sends the browser to the page
    steps_url = reverse("traces:trace-steps", args=[trace.trace_id]) + "?" + href.split("?", 1)[1]
    assert viewer_client.get(steps_url).status_code == 302


def test_at_opens_the_steps_around_a_span(trace_of, viewer_client):
    trace = trace_of(alternating(399))
    target = Step.objects.filter(trace=trace).order_by("started_at", "id")[99]
    response = viewer_client.get(detail(trace.trace_id), {"at": target.span_id})
    assert positions(response) == list(range(1, 200))  # 99 before, the step, 99 after
    assert response.context["window"].more_after
    unknown = viewer_client.get(detail(trace.trace_id), {"at": "f" * 16})
    assert unknown.context["mode"] == "end"


# --- what stands out ------------------------------------------------------------------------------


def test_repeated_identical_tool_calls_are_marked_as_a_loop(trace_of, viewer_client):
    same = {"kind": "tool", "tool": "refund", "args": {"order": 7, "amount": 10}}
    trace = trace_of(
        [same, dict(same), dict(same), {"kind": "tool", "tool": "refund", "args": {"order": 8}}, dict(same)]
    )
    response = viewer_client.get(detail(trace.trace_id))
    steps = {s.position: s for s in response.context["steps"]}
    assert [steps[p].repeat_count for p in (2, 3, 4, 5, 6)] == [4, 4, 4, 1, 4]
    assert [steps[p].repeat_run for p in (2, 3, 4, 5, 6)] == [0, 2, 3, 0, 0]
    html = response.content.decode()
    assert html.count("repeat ×4") == 4
    assert "repeat ×4 · 3 in a row" in html
    assert re.search(rf'<li id="step-{steps[4].span_id}" class="[^"]*step-loop', html)
    assert not re.search(rf'<li id="step-{steps[2].span_id}" class="[^"]*step-loop', html)


def test_finish_reason_length_stands_out(trace_of, viewer_client):
    trace = trace_of([{"kind": "llm", "finish_reason": "length"}, {"kind": "llm", "finish_reason": "stop"}])
    html = viewer_client.get(detail(trace.trace_id)).content.decode()
    assert html.count("cut off at the token limit") == 1
    assert "finish: stop" in html
    assert html.count("step-length") == 1


def test_slow_steps_get_a_wide_timing_bar(trace_of, viewer_client):
    trace = trace_of([{"kind": "llm", "duration_ms": 10}, {"kind": "tool", "tool": "search", "duration_ms": 2000}])
    response = viewer_client.get(detail(trace.trace_id))
    fast, slow = response.context["steps"][1:]
    assert float(slow.bar_width) > 90 > float(fast.bar_width)
    assert float(slow.bar_left) > float(fast.bar_left)
    assert f"width: {slow.bar_width}%" in response.content.decode()
    assert "step-slow" in response.content.decode()


# --- full text, search ----------------------------------------------------------------------------


def test_full_output_endpoint_returns_the_whole_text_escaped(trace_of, viewer_client):
    trace = trace_of([{"kind": "llm", "output": SCRIPT + "x" * 5000, "input": IMG + "y" * 300}])
    step = Step.objects.get(trace=trace, kind="llm")
    page = viewer_client.get(detail(trace.trace_id)).content.decode()
    url = reverse("traces:step-text", args=[trace.trace_id, step.span_id, "output"]) + "?agent=support-bot"
    assert f'hx-get="{url}"' in page
    assert "x" * 5000 not in page
    fragment = viewer_client.get(url, headers=HX).content.decode()
    assert "<html" not in fragment
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" + "x" * 5000 in fragment
    assert SCRIPT not in fragment
    full_page = viewer_client.get(url).content.decode()  # without htmx: a page of its own
    assert "<html" in full_page and "x" * 5000 in full_page and SCRIPT not in full_page
    input_url = reverse("traces:step-text", args=[trace.trace_id, step.span_id, "input"])
    input_text = viewer_client.get(input_url, headers=HX).content.decode()
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" + "y" * 300 in input_text
    assert IMG not in input_text


def test_full_text_of_unknown_field_span_or_trace_is_404(trace_of, viewer_client):
    trace = trace_of([{"kind": "llm", "output": "hi"}])
    span = Step.objects.get(trace=trace, kind="llm").span_id
    assert viewer_client.get(reverse("traces:step-text", args=[trace.trace_id, span, "attributes"])).status_code == 404
    assert viewer_client.get(reverse("traces:step-text", args=[trace.trace_id, "f" * 16, "output"])).status_code == 404
    assert viewer_client.get(reverse("traces:step-text", args=["f" * 32, span, "output"])).status_code == 404


def test_search_finds_steps_by_tool_argument_and_output(trace_of, viewer_client):
    trace = trace_of(
        [
            {"kind": "tool", "tool": "lookup_order", "args": {"order_id": "ORD-991"}, "output": "shipped"},
            {"kind": "llm", "output": "The customer wants a REFUND now"},
            {"kind": "tool", "tool": "refund", "args": {"amount": 10}, "output": "ok"},
            {"kind": "tool", "tool": "search", "args": {"q": "faq"}, "error": "HTTP 503", "status": "error"},
        ]
    )
    url = detail(trace.trace_id)

    def found(q, **headers):
        response = viewer_client.get(url, {"q": q}, headers=headers)
        assert response.status_code == 200
        return sorted(s.position for s in response.context["steps"])

    assert found("lookup_order") == [2]
    assert found("ord-991") == [2]  # arguments, case-insensitive
    assert found("refund") == [3, 4]  # output text and tool name
    assert found("HTTP 503") == [5]  # errors
    assert found("nothing like this") == []
    fragment = viewer_client.get(url, {"q": "refund"}, headers={**HX, "HX-Target": "trajectory"}).content.decode()
    assert "<html" not in fragment
    assert 'id="trajectory"' in fragment
    assert "2 steps</strong> match “refund”" in fragment
    assert "show in context" in fragment
    assert "No step matches" in viewer_client.get(url, {"q": "zzz"}).content.decode()


def test_search_treats_like_wildcards_as_text(trace_of, viewer_client):
    trace = trace_of([{"kind": "llm", "output": "100% sure"}, {"kind": "llm", "output": "plain"}])
    response = viewer_client.get(detail(trace.trace_id), {"q": "%"})
    assert [s.position for s in response.context["steps"]] == [2]


# --- 404s and escaping ----------------------------------------------------------------------------


def test_unknown_trace_is_404_everywhere(responder_client, db):
    missing = "f" * 32
    for url in [
        detail(missing),
        reverse("traces:trace-steps", args=[missing]) + "?before=1_1",
        reverse("traces:trace-diff", args=[missing]),
        reverse("traces:trace-flag", args=[missing]),
    ]:
        assert responder_client.get(url, headers=HX).status_code == 404, url
    assert (
        responder_client.post(reverse("traces:trace-flag", args=[missing]), {"span_id": "a", "note": "x"}).status_code
        == 404
    )
    assert responder_client.post(reverse("traces:trace-golden", args=[missing])).status_code == 404


def test_garbage_cursors_fall_back_to_the_end(trace_of, viewer_client):
    trace = trace_of(alternating(3))
    response = viewer_client.get(detail(trace.trace_id), {"before": "not-a-cursor", "after": "x_y"})
    assert response.status_code == 200
    assert response.context["mode"] == "end"
    bad = viewer_client.get(reverse("traces:trace-steps", args=[trace.trace_id]), headers=HX)
    assert bad.status_code == 400


@pytest.fixture
def hostile(make_agent, make_spans, ingest):
    """A finished run whose every agent-supplied field carries a payload, flagged, and a golden run to diff with."""
    make_agent("evil-bot", allowed_tools=["search"])
    common = {
        "agent": "evil-bot",
        "user_id": IMG,
        "session_id": SCRIPT,
        "input_class": SCRIPT,
        "model_version": IMG,
        "prompt_version": SCRIPT,
        "root_input": SCRIPT,
        "root_output": IMG,
        "start": T0,
    }
    steps = [
        {
            "kind": "tool",
            "name": SCRIPT,
            "tool": IMG,
            "args": {SCRIPT: IMG, "q": SCRIPT},
            "output": SCRIPT + IMG,
            "input": IMG,
            "error": SCRIPT,
            "status": "error",
            "model": IMG,
            "agent_name": SCRIPT,
            "finish_reason": IMG,
        },
        {"kind": "llm", "output": IMG * 300},  # long: cut, with the rest on demand
    ]
    ingest(make_spans(trace_id="e" * 32, steps=steps, **common))
    ingest(make_spans(trace_id="d" * 32, steps=[{"kind": "tool", "tool": IMG, "args": {"q": IMG}}], **common))
    trace = Trace.objects.get(trace_id="e" * 32)
    trace_golden_set(trace=Trace.objects.get(trace_id="d" * 32), actor=Actor.system("tests"))
    span = Step.objects.get(trace=trace, kind="tool").span_id
    trace_flag(trace=trace, span_id=span, note=SCRIPT + " and " + IMG, actor=Actor.system("tests"))
    return trace, span


def test_xss_payloads_are_escaped_in_every_field(hostile, responder_client):
    trace, span = hostile
    pages = {
        "detail": detail(trace.trace_id),
        "search": detail(trace.trace_id) + "?q=window",
        "at": detail(trace.trace_id) + f"?at={span}",
        "diff": reverse("traces:trace-diff", args=[trace.trace_id]),
        "output": reverse("traces:step-text", args=[trace.trace_id, span, "output"]),
        "input": reverse("traces:step-text", args=[trace.trace_id, span, "input"]),
        "list": reverse("traces:trace-list"),
        "flag form": reverse("traces:trace-flag", args=[trace.trace_id]) + f"?span_id={span}",
    }
    for name, url in pages.items():
        for headers in ({}, HX):
            response = responder_client.get(url, headers=headers)
            assert response.status_code == 200, name
            assert_inert(response.content.decode())
    html = responder_client.get(pages["detail"]).content.decode()
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in html
    templates = Path(__file__).resolve().parents[1] / "templates" / "traces"
    for template in templates.glob("*.html"):
        assert "|safe" not in template.read_text(), template.name
