"""The trajectory viewer in Chromium: hostile trace content stays inert, and a responder walks back
from the end with the keyboard and flags the off-rails step."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from traces.models import Step, Trace

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
def hostile_trace(make_agent, make_spans, ingest):
    make_agent("evil-bot", allowed_tools=["search"])
    steps = [
        {
            "kind": "tool",
            "name": SCRIPT,
            "tool": IMG,
            "args": {SCRIPT: IMG, "q": SCRIPT},
            "output": SCRIPT + IMG,
            "input": IMG + SCRIPT,
            "error": IMG,
            "status": "error",
            "finish_reason": IMG,
        },
        {"kind": "llm", "output": (IMG + SCRIPT) * 100},  # cut at 2,000 characters: "show all" loads the rest
    ]
    spans = make_spans(
        agent="evil-bot",
        trace_id="e" * 32,
        steps=steps,
        user_id=IMG,
        session_id=SCRIPT,
        input_class=SCRIPT,
        root_input=SCRIPT,
        root_output=IMG,
    )
    ingest(spans)
    return Trace.objects.get(trace_id="e" * 32)


def test_hostile_trace_content_stays_inert(page, live_server, login, hostile_trace):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, role="responder")
    page.goto(f"{live_server.url}/traces/{hostile_trace.trace_id}/")
    step = page.locator("li.step.kind-tool")
    step.wait_for()
    assert page.evaluate("window.__xss") is None
    # the payloads are shown as text
    assert SCRIPT in step.locator(".step-name").inner_text()
    assert IMG in step.locator(".tool").inner_text()

    # text loaded by htmx later: the rest of a long output, the input, search results
    page.locator("li.step.kind-llm a.more-text").click()
    page.locator("li.step.kind-llm pre[data-full-text]").wait_for()
    assert page.locator("li.step.kind-llm pre[data-full-text]").inner_text().count(SCRIPT) == 100
    step.locator("details summary", has_text="Input").click()
    step.locator("pre[data-full-text]").wait_for()
    assert step.locator("pre[data-full-text]").inner_text() == IMG + SCRIPT
    page.press("body", "/")
    page.keyboard.type("window.__xss")
    page.locator("#trajectory[data-mode=search]").wait_for()
    assert page.locator("#trajectory li.step").count() == 3  # the root span answered with one too
    assert page.evaluate("document.activeElement.id") == "trace-q"  # results never steal the focus
    page.goto(f"{live_server.url}/traces/")
    page.goto(f"{live_server.url}/traces/{hostile_trace.trace_id}/diff/")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []


@pytest.fixture
def long_trace(make_agent, make_spans, ingest):
    make_agent("support-bot", allowed_tools=["search", "refund"])
    steps = []
    for i in range(12):
        steps.append({"kind": "llm", "output": f"Thinking about step {i}."})
        steps.append({"kind": "tool", "tool": "search", "args": {"q": f"order {i}"}, "output": f"result {i}"})
    ingest(
        make_spans(agent="support-bot", trace_id="a" * 32, steps=steps, start=datetime.now(UTC) - timedelta(minutes=2))
    )
    return Trace.objects.get(trace_id="a" * 32)


def test_responder_walks_back_and_flags_a_step_with_the_keyboard(page, live_server, login, long_trace):
    user = login(page, role="responder")
    page.goto(f"{live_server.url}/traces/{long_trace.trace_id}/")
    ordered = list(Step.objects.filter(trace=long_trace).order_by("started_at", "id").values_list("span_id", flat=True))

    # it opens at the end: the cursor is on the last step, which is on screen
    cursor = page.locator("li.step.is-cursor")
    cursor.wait_for()
    assert cursor.get_attribute("data-span") == ordered[-1]
    assert cursor.is_visible()
    assert page.locator("li.step.step-recent").count() == 5
    assert page.evaluate("window.scrollY") > 0

    for _ in range(3):
        page.keyboard.press("k")
    assert page.locator("li.step.is-cursor").get_attribute("data-span") == ordered[-4]
    page.keyboard.press("j")
    page.keyboard.press("k")
    target = ordered[-4]
    assert page.locator("li.step.is-cursor").get_attribute("data-span") == target

    page.keyboard.press("f")
    note = page.locator("#flag-form input[name=note]")
    assert note.is_visible()
    assert note.evaluate("el => document.activeElement === el")
    assert page.locator(f"#step-{target} #flag-form").count() == 1  # the form opens on that step
    note.type("It kept fetching the same order: a junk loop.")  # j, k and f typed here are text
    page.keyboard.press("Enter")

    page.locator(f"#flagmark-{target} .badge-flag").wait_for()
    page.locator("#flag-box.is-flagged").wait_for()
    assert "It kept fetching the same order: a junk loop." in page.locator("#flag-box").inner_text()
    assert page.locator("#flag-form").is_hidden()
    stored = Trace.objects.get(pk=long_trace.pk)
    assert stored.flagged_span_id == target
    assert stored.flag_note == "It kept fetching the same order: a junk loop."
    assert stored.flagged_by == user.username

    # Escape closes the form without writing; an empty note is refused by the server too
    page.keyboard.press("k")
    page.keyboard.press("f")
    page.keyboard.press("Escape")
    assert page.locator("#flag-form").is_hidden()
    assert Trace.objects.get(pk=long_trace.pk).flagged_span_id == target


def test_viewer_has_no_flag_form_and_f_does_nothing(page, live_server, login, long_trace):
    login(page, role="viewer")
    page.goto(f"{live_server.url}/traces/{long_trace.trace_id}/")
    page.locator("li.step.is-cursor").wait_for()
    page.keyboard.press("k")
    page.keyboard.press("f")
    assert page.locator("#flag-form").count() == 0
    assert Trace.objects.get(pk=long_trace.pk).flagged_span_id == ""


def test_folding_hides_and_shows_a_subtree(page, live_server, login, long_trace):
    login(page, role="viewer")
    page.goto(f"{live_server.url}/traces/{long_trace.trace_id}/")
    root_fold = page.locator("li.step .fold").first
    root_fold.click()
    assert page.locator("#steps > li.step:visible").count() == 1  # the root span only
    assert "24 folded" in page.locator("li.step.is-folded").inner_text()
    root_fold.click()
    assert page.locator("#steps > li.step:visible").count() == 25


def test_a_long_trace_loads_earlier_steps_when_scrolled_up(page, live_server, login, make_agent, make_spans, ingest):
    make_agent("chatty-bot", allowed_tools=["search"])
    steps = [{"kind": "tool", "tool": "search", "args": {"q": i}} for i in range(399)]
    ingest(make_spans(agent="chatty-bot", trace_id="b" * 32, steps=steps))
    login(page, role="viewer")
    page.goto(f"{live_server.url}/traces/{'b' * 32}/")
    page.locator("li.step.is-cursor").wait_for()
    assert page.locator("#steps > li.step").count() == 150  # opens at the end only
    assert page.locator("li.step.is-cursor").get_attribute("data-pos") == "400"
    page.locator("li.load-earlier").scroll_into_view_if_needed()
    expect(page.locator("#steps > li.step")).to_have_count(350)  # not wait_for_function: the CSP forbids eval
    assert page.locator("#steps > li.step").first.get_attribute("data-pos") == "51"
    # the place is kept: the step that was on screen is still on screen
    assert page.locator("#step-" + page.locator("#steps > li.step").nth(200).get_attribute("data-span")).is_visible()


def test_a_running_trace_grows_live_and_says_when_it_ends(page, live_server, login, make_agent, make_spans, ingest):
    make_agent("live-bot", allowed_tools=["search"])
    start = datetime.now(UTC) - timedelta(seconds=30)
    first = make_spans(agent="live-bot", trace_id="c" * 32, start=start, status="running", steps=[{"kind": "llm"}] * 3)
    ingest(first)
    login(page, role="viewer")
    page.goto(f"{live_server.url}/traces/{'c' * 32}/")
    page.locator("#poller").wait_for()
    assert page.locator("#trace-status").inner_text().strip().lower() == "running"
    assert page.locator("#steps > li.step").count() == 3
    more = make_spans(
        agent="live-bot",
        trace_id="c" * 32,
        start=start + timedelta(seconds=10),
        status="running",
        steps=[{"kind": "tool", "tool": "search", "args": {"q": "new"}}] * 2,
    )
    ingest(more)
    expect(page.locator("#steps > li.step")).to_have_count(5, timeout=6000)
    # The cursor follows the end: the two identical new calls are one "x2 identical" row, its first call.
    page.locator(f"#step-{more[0].span_id}.is-cursor").wait_for(timeout=2000)
    expect(page.get_by_role("button", name="×2 identical")).to_be_visible()
    ingest(make_spans(agent="live-bot", trace_id="c" * 32, start=start, steps=[], status="ok"))
    page.locator(".run-finished").wait_for(timeout=6000)
    assert page.locator("#poller").count() == 0
    assert page.locator("#trace-status").inner_text().strip().lower() == "ok"
