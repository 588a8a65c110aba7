"""Browser tests: Playwright drives Debian's Chromium (never a downloaded browser)."""

import pytest

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _reference_data(reference_data):
    """live_server needs committed data, so each test's tables are flushed afterwards, taking what the
    migrations seeded with them: ``reference_data`` (conftest.py) puts the roles and the taxonomy back."""


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """A desktop window by default (the header shows its links inline from 1,321 px); phone tests set 390."""
    return {**browser_context_args, "viewport": {"width": 1400, "height": 900}}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture
def login(live_server, make_user):
    """Log a fresh user with ``role`` in through the real login form; returns the user."""

    def do(page, role="responder"):
        user = make_user(role, password="correct horse battery")
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return user

    return do
