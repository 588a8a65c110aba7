"""A tool output stored apart (over 64 KiB) in Chromium, on a phone: the viewer shows its head, "Show all"
fetches the whole value on demand, the page never scrolls sideways, and the text stays inert."""

import os

import pytest

from traces.models import Trace

SCRIPT = "<script>window.__xss=1</script>"
LINE = "row {:05d} order ORD-{:05d} refunded " + SCRIPT + "\n"
OUTPUT = "".join(LINE.format(i, i) for i in range(5000)) + "END-OF-PAYLOAD"  # ≈ 330 KB


@pytest.fixture
def big_trace(make_agent, make_spans, ingest):
    make_agent("bulk-bot", allowed_tools=["export_orders"])
    ingest(make_spans(agent="bulk-bot", trace_id="b1" * 16, steps=[{"kind": "tool", "tool": "export_orders",
                                                                   "output": OUTPUT}]))  # fmt: skip
    return Trace.objects.get(trace_id="b1" * 16)


def test_a_payload_stored_apart_is_fetched_on_show_all_and_fits_a_phone(page, live_server, login, big_trace):
    login(page, role="viewer")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/traces/{big_trace.trace_id}/")
    step = page.locator("li.step.kind-tool")
    step.wait_for()
    block = step.locator("details", has_text="stored apart")
    assert "[the rest is stored apart]" in block.inner_text()
    assert "END-OF-PAYLOAD" not in page.content()  # only the head came with the page

    block.locator("a.more-text", has_text="Show all").click()
    block.get_by_text("END-OF-PAYLOAD").wait_for()
    text = block.locator(".textblock").inner_text()
    assert text.count("refunded") == 5000 and text.count(SCRIPT) == 5000  # the whole value, as text
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if os.environ.get("FIREBREAK_SWEEP_SHOTS"):
        page.screenshot(path=os.path.join(os.environ["FIREBREAK_SWEEP_SHOTS"], "phone-payload-apart.png"))
