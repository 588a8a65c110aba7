"""An alert's notifications, unfolded in its row, at a desktop and a phone width: nothing runs off to the
side, and why a delivery failed is readable."""

import pytest

from incidents.alerts.services import alert_raise
from incidents.notifications.deliveries import delivery_failed, delivery_record, delivery_sent

UNBROKEN = "y" * 300


@pytest.fixture
def alert_with_deliveries(make_agent):
    agent = make_agent("a-rather-long-agent-slug-for-the-support-desk-fleet")
    alert, _ = alert_raise(detector="action_repeat", agent=agent, fingerprint="f-d", title="Refund loop " * 8)
    sent = delivery_record(channel="apprise", target="payments-oncall-" + "z" * 80, event="alert.raised", alert=alert)
    delivery_sent(delivery=sent)
    failed = delivery_record(channel="apprise", target="default", event="alert.raised", alert=alert)
    delivery_failed(
        delivery=failed, error="Failed to send JSON POST notification: Internal server error., error=500. " + UNBROKEN
    )
    return alert


@pytest.mark.parametrize("width", [1400, 390])
def test_an_alerts_notifications_unfold_inside_the_page(page, live_server, login, alert_with_deliveries, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, role="viewer")
    page.goto(f"{live_server.url}/incidents/alerts/")
    row = page.locator(f"#alert-{alert_with_deliveries.pk}")
    summary = row.locator(".alert-deliveries summary")
    summary.wait_for()
    assert "notifications (2)" in summary.inner_text() and "failed" in summary.inner_text()
    summary.click()
    error = row.locator(".delivery-error").last
    error.wait_for()
    assert "error=500" in error.inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate(
        "() => { const w = document.querySelector('#alerts').closest('.table-wrap');"
        " return w.scrollWidth <= w.clientWidth; }"
    )
    box = error.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
