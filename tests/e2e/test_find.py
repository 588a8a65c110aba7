"""Search, a session's and a user's runs in Chromium: what a person sees, and no CSP violation."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from traces.models import Trace

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def runs(make_agent):
    agent = make_agent("find-bot")
    t0 = timezone.now() - timedelta(hours=1)
    return [
        Trace.objects.create(
            trace_id=f"{i + 1:032x}",
            agent=agent,
            session_id="sess-e2e",
            user_id="user-e2e",
            root_input=f"refund the order {XSS} step {i}",
            started_at=t0 + timedelta(minutes=i),
        )
        for i in range(2)
    ]


def test_search_then_session_and_user_pages(page, live_server, login, runs):
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page)

    page.goto(f"{live_server.url}/search/")
    expect(page.get_by_text("Search incidents, post-mortems, alerts and traces")).to_be_visible()
    page.fill("input[name=q]", "refund order")
    page.keyboard.press("Enter")
    traces = page.locator("#group-traces")
    expect(traces.locator("h2")).to_contain_text("2")
    expect(traces.locator("mark").first).to_have_text("refund")
    expect(traces.locator(".snippet").first).to_contain_text(XSS)  # shown as text, never run

    page.fill("input[name=q]", runs[0].trace_id)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/traces/{runs[0].trace_id}/?agent=find-bot")

    page.get_by_role("link", name="sess-e2e").click()
    expect(page.locator("h1")).to_contain_text("Session sess-e2e")
    rows = page.locator("table.traces tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(runs[0].trace_id[:10])

    page.get_by_role("link", name="user-e2e").first.click()
    expect(page.locator("h1")).to_contain_text("User user-e2e")
    expect(page.locator("table.traces tbody tr")).to_have_count(2)
    assert not violations and not dialogs
