"""Login lockout (django-axes): per user name and client address, never by a forged X-Forwarded-For."""

import pytest
from django.test import Client

from core.client_ip import client_ip_from

PASSWORD = "pw-for-tests-1"  # the make_user fixture's
LOGIN = "/accounts/login/"


def attempt(client: Client, username: str, password: str, address: str, **headers):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def fail(client: Client, username: str, address: str, times: int, **headers):
    for _ in range(times):
        response = attempt(client, username, "wrong password", address, **headers)
    return response


@pytest.fixture
def user(make_user):
    return make_user("admin", username="breakglass")


def test_five_failures_lock_that_user_name_from_that_address(client, user):
    assert fail(client, "breakglass", "203.0.113.7", 4).status_code == 200  # the form again, with its error
    response = fail(client, "breakglass", "203.0.113.7", 1)
    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    page = response.content.decode()
    assert "Login locked" in page and "breakglass" in page and "203.0.113.7" in page
    assert "15 minutes" in page
    assert 'class="topbar"' in page  # the site's layout, not a bare message


def test_a_correct_password_during_the_lockout_is_refused(client, user):
    fail(client, "breakglass", "203.0.113.7", 5)
    response = attempt(client, "breakglass", PASSWORD, "203.0.113.7")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_same_user_from_another_address_still_logs_in(client, user):
    fail(client, "breakglass", "203.0.113.7", 6)
    response = attempt(Client(), "breakglass", PASSWORD, "198.51.100.20")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_another_user_from_the_locked_address_still_logs_in(client, user, make_user):
    other = make_user("viewer")
    fail(client, "breakglass", "203.0.113.7", 5)
    assert attempt(Client(), other.username, PASSWORD, "203.0.113.7").status_code == 302


def test_a_forged_x_forwarded_for_from_an_untrusted_peer_does_not_change_the_key(client, user):
    for n in range(5):  # a new forged address every time: the lock still builds up on the real peer
        attempt(client, "breakglass", "wrong password", "203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}")
    response = attempt(Client(), "breakglass", PASSWORD, "203.0.113.7", HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert response.status_code == 429
    assert "203.0.113.7" in response.content.decode()


def test_a_trusted_proxy_names_the_client(client, user, settings):
    settings.FIREBREAK_TRUSTED_PROXIES = ["10.0.0.0/8"]
    fail(client, "breakglass", "10.0.0.5", 5, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert attempt(Client(), "breakglass", PASSWORD, "10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Another client behind the same proxy is not locked out.
    assert attempt(Client(), "breakglass", PASSWORD, "10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 302


def test_a_successful_login_resets_the_count(client, user):
    fail(client, "breakglass", "203.0.113.7", 4)
    assert attempt(Client(), "breakglass", PASSWORD, "203.0.113.7").status_code == 302
    assert fail(client, "breakglass", "203.0.113.7", 4).status_code == 200


def test_the_limit_and_cooloff_come_from_the_settings(client, user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    assert fail(client, "breakglass", "203.0.113.7", 2).status_code == 429


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", "1.2.3.4", [], "203.0.113.7"),  # untrusted peer: its header is ignored
        ("10.0.0.5", "1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),  # only the hop the proxy added counts
        ("10.0.0.5", "1.2.3.4, 10.0.0.9", ["10.0.0.0/8"], "1.2.3.4"),  # a chain of trusted proxies
        ("10.0.0.5", "not-an-ip", ["10.0.0.0/8"], "10.0.0.5"),
        ("", "1.2.3.4", [], "1.2.3.4"),  # the gate server's proxy on gunicorn's unix socket
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(settings, peer, forwarded, trusted, expected):
    settings.FIREBREAK_TRUSTED_PROXIES = trusted
    assert client_ip_from(peer, forwarded) == expected


def test_the_admin_login_is_locked_out_the_same_way(client, user):
    address = "203.0.113.7"
    for _ in range(5):
        client.post("/admin/login/", {"username": "breakglass", "password": "wrong password"}, REMOTE_ADDR=address)
    response = client.post("/admin/login/", {"username": "breakglass", "password": PASSWORD}, REMOTE_ADDR=address)
    assert response.status_code == 429
    assert "Login locked" in response.content.decode()
