"""Single sign-on in Chromium against a real OpenID provider (django-oauth-toolkit) on loopback.

The person signs in on the provider's own login form; Firebreak exchanges the code, checks the RS256 ID
token against the provider's JWKS, and gives the role the person's groups map to.
"""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from core.sso.discovery import discovery_forget
from core.sso.models import SsoIdentity
from tests.oidc_provider.process import CLIENT_ID, CLIENT_SECRET, PASSWORD, OidcProvider

ROLE_GROUPS = "admin=firebreak-admins,responder=oncall,viewer=staff"


@pytest.fixture(scope="session")
def oidc_provider():
    provider = OidcProvider.start()
    yield provider
    provider.stop()


@pytest.fixture
def sso(settings, oidc_provider):
    settings.FIREBREAK_OIDC_ISSUER = oidc_provider.issuer
    settings.FIREBREAK_OIDC_CLIENT_ID = CLIENT_ID
    settings.FIREBREAK_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.FIREBREAK_OIDC_ROLE_GROUPS = ROLE_GROUPS
    settings.FIREBREAK_OIDC_PROVIDER_NAME = "Test IdP"
    discovery_forget()
    yield oidc_provider
    discovery_forget()


def sign_in_at_provider(page, live_server, provider, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.wait_for_url(f"{provider.url}/accounts/login/**")  # the provider's own form, not Firebreak's
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in to the provider").click()


def test_oncall_member_signs_in_through_the_provider_as_a_responder_and_can_kill(page, live_server, sso, make_agent):
    make_agent("support-triage")
    sign_in_at_provider(page, live_server, sso, "olivia")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".topbar .username").first).to_have_text("olivia")
    expect(page.locator(".topbar .role").first).to_have_text("responder")
    expect(page.locator("#card-support-triage").get_by_role("button", name="Kill")).to_be_visible()
    user = get_user_model().objects.get(username="olivia")
    assert not user.has_usable_password()  # in through the provider only
    assert list(user.groups.values_list("name", flat=True)) == ["responder"]
    assert SsoIdentity.objects.get(user=user).issuer == sso.issuer


def test_staff_member_is_a_viewer_without_kill_buttons_and_logs_out_at_the_provider_too(
    page, live_server, sso, make_agent
):
    make_agent("support-triage")
    sign_in_at_provider(page, live_server, sso, "vik")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".topbar .role").first).to_have_text("viewer")
    expect(page.locator("#card-support-triage")).to_be_visible()
    expect(page.locator("#card-support-triage").get_by_role("button", name="Kill")).to_have_count(0)

    page.locator(".topbar").get_by_role("button", name="Log out").first.click()
    # Out of Firebreak, then through the provider's end_session_endpoint and back to Firebreak's login page.
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.wait_for_url(f"{sso.url}/accounts/login/**")  # the provider asks again: its session ended too


def test_a_person_in_no_mapped_group_is_refused_and_no_account_is_made(page, live_server, sso):
    sign_in_at_provider(page, live_server, sso, "nora")
    expect(page.get_by_role("heading", name="Sign-in refused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("none of the groups that may use Firebreak")
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    assert not get_user_model().objects.filter(username="nora").exists()
