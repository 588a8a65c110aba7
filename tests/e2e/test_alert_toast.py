"""The new-alert toast in Chromium: an alert raised while a person types elsewhere shows up within one
poll, escaped, with a link, and the typing keeps its focus."""

import pytest
from playwright.sync_api import expect

from incidents.models import Alert

pytestmark = [pytest.mark.e2e, pytest.mark.urls("tests.e2e.toast_urls")]

XSS = "<img src=x onerror=alert(1)>"


def test_new_alert_toast_appears_without_stealing_focus(page, live_server, login, make_agent):
    agent = make_agent("toast-bot")
    Alert.objects.create(detector="loop", agent=agent, fingerprint="old", title="Raised before the page opened")
    violations, dialogs = [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page)
    with page.expect_response(lambda r: "/incidents/alerts/new/" in r.url):
        page.goto(f"{live_server.url}/e2e/toast/")  # the first poll (on load) only fetches the cursor
    # One toast box, so the poll waited for above is the one whose cursor counts. This page once held two (the
    # partial included twice): the wait caught one box's answer while the other's was on its way, and that one,
    # answered after the alert below was raised, took the alert as already seen (a flaky test on a busy machine).
    expect(page.locator("#alert-toast")).to_have_count(1)
    page.fill("#typing", "half a sentence")

    Alert.objects.create(detector="loop", agent=agent, fingerprint="new", title=f"Loop on refunds {XSS}")
    toast = page.locator("#alert-toast .alert-toast-item")
    # The page polls every 10 s: two polls' time, so a poll delayed on a loaded machine (CI's second pass) still counts.
    expect(toast).to_have_count(1, timeout=25_000)
    expect(toast).to_contain_text(f"New alert: Loop on refunds {XSS}")
    expect(toast).not_to_contain_text("Raised before the page opened")
    assert page.evaluate("document.activeElement.id") == "typing"
    toast.get_by_role("button", name="Dismiss this alert notice").click()
    expect(toast).to_have_count(0)
    assert not violations and not dialogs
