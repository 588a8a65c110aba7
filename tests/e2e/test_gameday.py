"""A gameday in Chromium: start a drill on /gamedays/, kill its agent from the scorecard, read the time."""

import re

from playwright.sync_api import expect

from agents.models import Agent
from demo.gamedays.models import Gameday


def test_a_responder_runs_a_drill_and_the_scorecard_times_the_kill(page, live_server, login):
    login(page, role="responder")
    page.goto(f"{live_server.url}/gamedays/")
    page.select_option("select[name=scenario]", "runaway-loop")
    page.select_option("select[name=mode]", "tabletop")  # the clock without injection: the kill is the responder's
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/gamedays/\d+/$"))
    gameday = Gameday.objects.get()
    assert gameday.agent.slug == "drill-runaway-loop-1"
    contained = page.locator("#scorecard tr[data-mark=contained]")
    assert contained.locator("td").nth(2).inner_text().strip() == "—"
    assert page.locator("h1 .badge", has_text="DRILL").is_visible()

    page.get_by_role("button", name="Kill drill-runaway-loop-1").click()
    page.wait_for_url(f"{live_server.url}/gamedays/{gameday.pk}/")
    assert Agent.objects.get(pk=gameday.agent_id).state == "killed"
    cell = contained.locator("td").nth(2)
    assert re.fullmatch(r"\d+(\.\d)? s", cell.inner_text().strip())
    assert contained.locator("td").nth(3).inner_text().strip() == "on time"
    page.wait_for_function("document.querySelector('#chart-gameday .main-svg') !== null", timeout=10000)

    page.goto(f"{live_server.url}/gamedays/")
    assert page.get_by_role("link", name=re.compile(f"GD-{gameday.pk}")).is_visible()


def test_an_injected_runaway_loop_drill_shows_detection_and_containment_on_the_scorecard(
    page, live_server, login, settings
):
    """Drill mode end to end in the browser: the injected agent process (real SDK, real ingest) loops,
    the real detection path pauses it, and the scorecard fills both times while the page is open."""
    from demo.gamedays.tasks import gameday_inject_task

    settings.FIREBREAK_BASE_URL = live_server.url
    gameday_inject_task.app.conf.task_always_eager = True
    try:
        login(page, role="responder")
        page.goto(f"{live_server.url}/gamedays/")
        page.select_option("select[name=scenario]", "runaway-loop")
        page.select_option("select[name=mode]", "drill")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r"/gamedays/\d+/$"))
        for mark in ("detected", "contained"):  # the scorecard refreshes itself: the locator follows it
            cell = page.locator(f"#scorecard tr[data-mark={mark}] td").nth(2)
            expect(cell).to_have_text(re.compile(r"^\s*\d+(\.\d)? s\s*$"), timeout=60000)
        gameday = Gameday.objects.get()
        assert Agent.objects.get(pk=gameday.agent_id).state == "paused"  # by the detector, not by a click
    finally:
        gameday_inject_task.app.conf.task_always_eager = False
