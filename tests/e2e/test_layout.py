"""The header and the pages on a phone (390 px) and a desktop (1400 px): nothing scrolls sideways,
the header stays small, the menu button opens without JavaScript tricks and its links work."""

import re

import pytest
from playwright.sync_api import expect

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}


@pytest.fixture
def agent(make_agent):
    return make_agent(
        "refund-agent-with-a-long-name",
        allowed_tools=["search_knowledge_base", "lookup_order_history", "issue_refund_to_customer", "send_email"],
        high_risk_tools=["issue_refund_to_customer"],
    )


def _fits(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"{page.url} is {width} px wide in a {inner} px window"


def _header_height(page):
    return page.locator("header.topbar").bounding_box()["height"]


def test_on_a_phone_the_pages_fit_and_the_menu_opens_and_navigates(page, live_server, login, agent):
    page.set_viewport_size(PHONE)
    user = login(page, role="admin")
    user.is_staff = True  # the Django admin lets staff in only: its link shows to staff admins
    user.save()
    for path in ("/", f"/agents/{agent.slug}/", "/keys/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        _fits(page)
        assert _header_height(page) < 100
        expect(page.locator("header .mainnav")).to_be_hidden()
    # the agent page's Disable buttons are on screen, not cut off
    page.goto(f"{live_server.url}/agents/{agent.slug}/")
    button = page.get_by_role("button", name="Disable").first
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    menu = page.locator("details.navmenu")
    expect(menu.get_by_role("link", name="Keys")).to_be_hidden()
    menu.locator("summary").click()
    expect(menu.get_by_role("link", name="Admin")).to_be_visible()
    menu.get_by_role("link", name="Keys").click()
    expect(page).to_have_url(f"{live_server.url}/keys/")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    page.locator("details.navmenu summary").click()
    page.locator("details.navmenu").get_by_role("link", name="Agents").click()
    expect(page).to_have_url(f"{live_server.url}/agents/")


@pytest.mark.parametrize("width", [1340, 1400])
def test_on_a_desktop_the_header_shows_the_links_inline_on_one_line(page, live_server, login, width):
    page.set_viewport_size({"width": width, "height": 900})
    user = login(page, role="admin")
    user.is_staff = True  # the longest header: an admin's, with the Admin link
    user.save()
    page.reload()
    nav = page.locator("header .mainnav")
    expect(nav).to_be_visible()
    expect(page.locator("details.navmenu")).to_be_hidden()
    for name in ("Dashboard", "Agents", "Keys", "API docs", "Admin"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    tops = {round(box["y"]) for box in (a.bounding_box() for a in nav.get_by_role("link").all())}
    assert len(tops) == 1, f"the links wrap onto {len(tops)} lines at {width} px"
    assert _header_height(page) < 70
    expect(page.get_by_role("search")).to_be_visible()
    _fits(page)


def test_the_admin_link_is_for_admins_only(page, live_server, login):
    page.set_viewport_size(DESKTOP)
    login(page, role="responder")
    expect(page.locator("header .mainnav").get_by_role("link", name="Admin")).to_have_count(0)


def _csp_violations(page):
    seen = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def test_a_key_made_in_the_browser_is_shown_once_and_copied(page, live_server, login, agent):
    violations = _csp_violations(page)
    page.set_viewport_size(DESKTOP)
    login(page, role="admin")
    page.goto(f"{live_server.url}/keys/")
    page.select_option("#id_agent", agent.slug)
    page.get_by_role("button", name="Make an agent key").click()
    env = page.locator("#key-env")
    expect(env).to_have_value(re.compile(r"^FIREBREAK_API_KEY=fbk_\w{12}_\S+\nFIREBREAK_GATE_PUBLIC_KEY=\S+$"))
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    page.goto(f"{live_server.url}/keys/")
    expect(page.locator("#key-env")).to_have_count(0)
    # revoke with a reason, behind a confirmation
    page.get_by_text("Revoke…").click()
    page.locator("textarea[name=reason]").fill("rotated")
    page.get_by_role("button", name=re.compile("^Revoke fbk_")).click()
    expect(page.get_by_text("revoked", exact=False).first).to_be_visible()
    assert violations == []


def test_the_api_docs_link_back_to_the_app(page, live_server, login):
    violations = _csp_violations(page)
    page.set_viewport_size(DESKTOP)
    login(page, role="viewer")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator("#swagger-ui .info")).to_be_visible()  # Swagger UI still starts under the CSP
    assert violations == []
    page.get_by_role("link", name=re.compile("Back to Firebreak")).click()
    expect(page).to_have_url(f"{live_server.url}/")


def test_on_a_phone_the_trace_filters_fold_away_unless_one_is_set(page, live_server, login, agent, make_spans, ingest):
    ingest(make_spans(agent=agent.slug, trace_id="e" * 32, steps=[{"kind": "llm", "output": "hi"}]))
    page.set_viewport_size(PHONE)
    login(page, role="viewer")
    page.goto(f"{live_server.url}/traces/")
    expect(page.locator("details.filter-details")).not_to_have_attribute("open", "")
    expect(page.get_by_label("Tool used")).to_be_hidden()
    row = page.locator("#trace-results tbody tr").first
    assert row.bounding_box()["y"] < PHONE["height"]  # the first result is on the first screen
    page.get_by_text("Filters", exact=True).click()
    expect(page.get_by_label("Tool used")).to_be_visible()
    page.goto(f"{live_server.url}/traces/?status=ok")
    expect(page.locator("details.filter-details summary")).to_have_text("Filters (1 set)")
    expect(page.get_by_label("Tool used")).to_be_visible()
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/traces/")
    expect(page.get_by_label("Tool used")).to_be_visible()
    expect(page.locator("details.filter-details summary")).to_be_hidden()
