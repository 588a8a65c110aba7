"""A gameday in Chromium: start a drill on /gamedays/, kill its agent from the scorecard, read the time."""

import re

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
