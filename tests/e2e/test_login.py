from playwright.sync_api import expect


def test_anonymous_visitor_lands_on_the_login_page_and_can_log_in(page, live_server, login, make_agent):
    make_agent("support-triage")
    page.goto(f"{live_server.url}/incidents/")
    assert "/accounts/login/" in page.url
    user = login(page, role="viewer")
    assert page.get_by_text("support-triage").first.is_visible()
    assert page.get_by_text(user.username).first.is_visible()


def test_wrong_password_is_refused_with_a_message(page, live_server, make_user):
    user = make_user("viewer")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit], input[type=submit]")
    expect(page.get_by_role("alert").filter(has_text="did not match")).to_be_visible()  # waits for the answer
    assert "/accounts/login/" in page.url
