"""The metrics page's charts read as people read them: weeks as dates, whole counts, and the unit that fits
(minutes when everything was contained within the hour), at desktop and phone widths."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from incidents.models import FailureClass, Incident


@pytest.fixture
def contained_in_a_minute():
    declared = timezone.now() - timedelta(days=2)
    for number, severity in ((7, "SEV1"), (8, "SEV2")):
        Incident.objects.create(
            number=number,
            title=f"Runaway loop {number}",
            severity=severity,
            failure_class=FailureClass.objects.get(slug="tool-misuse"),
            declared_at=declared,
            contained_at=declared + timedelta(seconds=72),  # 0.02 hours
        )


@pytest.mark.parametrize("width", [1400, 390])
def test_charts_show_dates_whole_counts_and_minutes(page, live_server, login, contained_in_a_minute, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, role="viewer")
    page.goto(f"{live_server.url}/incidents/metrics/")
    expect(page.locator("#chart-contain .xtick").first).to_be_attached()
    ticks = page.locator("#chart-contain .xtick text").all_text_contents()
    assert ticks and not [t for t in ticks if ":" in t], ticks  # dates, never "23:59:59.9995"
    assert page.locator("#chart-contain .ytitle").text_content() == "minutes"
    counts = page.locator("#chart-by-class .xtick text").all_text_contents()
    assert counts == sorted(set(counts), key=int), counts  # 0, 1, 2: no repeated "0, 0, 1, 1"
    if width == 390:
        assert page.locator("#chart-contain .modebar").count() == 0  # no toolbar over the legend on a phone
