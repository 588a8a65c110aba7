"""The dashboard's 2 s refresh in Chromium: the keyboard focus stays on the control the responder
is on, and a card keeps its place when its agent is killed."""

from playwright.sync_api import expect

COUNT_REFRESHES = """() => {
  window.__swaps = 0;
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target.id === "fleet") window.__swaps++;
  });
}"""


def _count_refreshes(page):
    # Count the refreshes so the wait covers the cycles asked for, however slow the machine.
    page.evaluate(COUNT_REFRESHES)


def _card_order(page):
    return page.eval_on_selector_all("#fleet .fleet-card", "cards => cards.map(c => c.id)")


def test_refresh_keeps_focus_on_the_kill_button(page, live_server, login, make_agent):
    for slug in ("alpha-bot", "beta-bot", "gamma-bot"):
        make_agent(slug)
    login(page, role="responder")
    page.locator("#kill-beta-bot").focus()
    assert page.evaluate("document.activeElement.id") == "kill-beta-bot"
    _count_refreshes(page)
    page.wait_for_function("() => window.__swaps >= 3", timeout=15000)
    assert page.evaluate("document.activeElement.id") == "kill-beta-bot"


def test_a_killed_card_keeps_its_place_and_the_focus_stays_on_it(page, live_server, login, make_agent):
    for slug in ("alpha-bot", "beta-bot", "gamma-bot"):
        make_agent(slug)
    login(page, role="responder")
    before = _card_order(page)
    assert before == ["card-alpha-bot", "card-beta-bot", "card-gamma-bot"]
    page.locator("#kill-beta-bot").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#card-beta-bot")).to_have_attribute("data-state", "killed", timeout=5000)
    _count_refreshes(page)
    page.wait_for_function("() => window.__swaps >= 2", timeout=15000)
    assert _card_order(page) == before
    # The Kill button is gone with the kill: the focus is on the card's next control, not <body>.
    assert (
        page.evaluate(
            "document.activeElement.closest('.fleet-card') && document.activeElement.closest('.fleet-card').id"
        )
        == "card-beta-bot"
    )
