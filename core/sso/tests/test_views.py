"""The login page, the start and the callback, against a provider on loopback (a real http.server thread).

The provider here serves discovery, its JWKS, a token endpoint and UserInfo the way OpenID Connect Core
and Discovery 1.0 describe them, with ID tokens signed by a real RSA key, so the checks Firebreak makes on
a token (signature against the JWKS, issuer, audience, expiry, nonce) are tried one by one.
"""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from core.roles import user_role
from core.sso.discovery import discovery_forget
from core.sso.models import SsoIdentity

CLIENT_ID = "firebreak"
CLIENT_SECRET = "s3cret-for-tests-0123456789abcdef"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Provider:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.token_status = 200
        self.auth_methods = None
        self.discovery_requests = 0
        self.id_token = ""
        self.userinfo = {}
        self.token_requests: list[dict] = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    provider.discovery_requests += 1
                    methods = {"token_endpoint_auth_methods_supported": provider.auth_methods}
                    return self._json(
                        200,
                        {
                            **(methods if provider.auth_methods else {}),
                            "issuer": provider.issuer,
                            "authorization_endpoint": f"{provider.issuer}/authorize",
                            "token_endpoint": f"{provider.issuer}/token",
                            "userinfo_endpoint": f"{provider.issuer}/userinfo",
                            "jwks_uri": f"{provider.issuer}/jwks",
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        },
                    )
                if self.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
                    return self._json(200, {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})
                if self.path == "/userinfo":
                    assert self.headers["Authorization"] == "Bearer access-1"
                    return self._json(200, provider.userinfo)
                return self._json(404, {})

            def do_POST(self):
                length = int(self.headers["Content-Length"])
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                form["authorization"] = self.headers.get("Authorization", "")
                provider.token_requests.append(form)
                if provider.token_status != 200:
                    return self._json(provider.token_status, {"error": "temporarily_unavailable"})
                body = {"access_token": "access-1", "token_type": "Bearer", "id_token": provider.id_token}
                return self._json(200, body)

        return Handler

    def token(self, nonce, key=KEY, **overrides):
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "u-42",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "preferred_username": "olivia",
            "email": "olivia@example.com",
            **overrides,
        }
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def provider():
    p = Provider()
    yield p
    p.server.shutdown()
    p.server.server_close()


@pytest.fixture
def sso(settings, provider):
    settings.FIREBREAK_OIDC_ISSUER = provider.issuer
    settings.FIREBREAK_OIDC_CLIENT_ID = CLIENT_ID
    settings.FIREBREAK_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.FIREBREAK_OIDC_ROLE_GROUPS = "admin=firebreak-admins,responder=oncall"
    settings.FIREBREAK_OIDC_PROVIDER_NAME = "Acme SSO"
    provider.token_status = 200
    provider.auth_methods = None
    provider.discovery_requests = 0
    provider.token_requests.clear()
    provider.userinfo = {"sub": "u-42", "groups": ["oncall"]}
    discovery_forget()
    yield provider
    discovery_forget()


def start(client: Client) -> dict[str, str]:
    response = client.get("/accounts/sso/start/?next=/incidents/")
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def callback(client: Client, state: str):
    return client.get("/accounts/sso/callback/", {"code": "code-1", "state": state})


@pytest.mark.django_db
def test_without_sso_the_login_page_has_only_the_password_form(client, settings):
    settings.FIREBREAK_OIDC_ISSUER = ""
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page and 'name="password"' in page
    assert client.get("/accounts/sso/start/").status_code == 404


@pytest.mark.django_db
def test_the_login_page_offers_the_provider_and_keeps_the_break_glass_form(client, sso):
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/sso/start/"' in page and "Sign in with Acme SSO" in page
    assert "Break-glass login" in page and 'name="password"' in page


@pytest.mark.django_db
def test_start_sends_the_browser_to_the_provider_with_state_nonce_and_pkce(client, sso):
    params = start(client)
    assert params["client_id"] == CLIENT_ID
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == "http://testserver/accounts/sso/callback/"
    assert params["code_challenge_method"] == "S256"
    assert params["state"] and params["nonce"] and params["code_challenge"]
    assert "openid" in params["scope"].split()


@pytest.mark.django_db
def test_a_valid_id_token_signs_the_person_in_with_the_mapped_role(client, sso):
    params = start(client)
    sso.id_token = sso.token(params["nonce"])
    response = callback(client, params["state"])
    assert response.status_code == 302 and response["Location"] == "/incidents/"
    user = get_user_model().objects.get(username="olivia")
    assert list(user.groups.values_list("name", flat=True)) == ["responder"]
    assert client.session["_auth_user_id"] == str(user.pk)
    exchange = sso.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["code"] == "code-1"
    assert exchange["code_verifier"]  # PKCE
    # client_secret_basic, the default when discovery lists no token_endpoint_auth_methods_supported
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert exchange["authorization"] == f"Basic {basic}"
    assert "client_secret" not in exchange


@pytest.mark.django_db
def test_a_provider_that_takes_only_client_secret_post_gets_the_secret_in_the_form(client, sso):
    sso.auth_methods = ["client_secret_post"]
    params = start(client)
    sso.id_token = sso.token(params["nonce"])
    assert callback(client, params["state"]).status_code == 302
    exchange = sso.token_requests[-1]
    assert exchange["client_secret"] == CLIENT_SECRET
    assert exchange["authorization"] == ""


@pytest.mark.django_db
def test_discovery_is_fetched_once_and_kept(client, sso):
    for _ in range(3):
        client.get("/accounts/login/")
        start(client)
    assert sso.discovery_requests == 1


@pytest.mark.django_db
def test_someone_taken_out_of_every_mapped_group_loses_their_role_and_is_refused(client, sso):
    params = start(client)
    sso.id_token = sso.token(params["nonce"])
    callback(client, params["state"])
    user = get_user_model().objects.get(username="olivia")
    assert user_role(user) == "responder"

    sso.userinfo = {"sub": "u-42", "groups": []}
    other = Client()
    params = start(other)
    sso.id_token = sso.token(params["nonce"])
    assert callback(other, params["state"]).status_code == 403
    user = get_user_model().objects.get(pk=user.pk)
    assert not user.groups.exists()  # an open session of theirs can no longer act
    assert user_role(user) == "viewer"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p, nonce: p.token(nonce, key=OTHER_KEY), id="signed-by-another-key"),
        pytest.param(lambda p, nonce: p.token(nonce, aud="someone-else"), id="another-audience"),
        pytest.param(lambda p, nonce: p.token(nonce, iss="https://evil.example"), id="another-issuer"),
        pytest.param(lambda p, nonce: p.token(nonce, exp=int(time.time()) - 600), id="expired"),
        pytest.param(lambda p, nonce: p.token("not-the-nonce"), id="replayed-nonce"),
        pytest.param(
            lambda p, nonce: jwt.encode({"sub": "u-42", "nonce": nonce}, CLIENT_SECRET, algorithm="HS256"),
            id="hs256-with-the-client-secret",
        ),
        pytest.param(lambda p, nonce: "not-a-jwt", id="garbage"),
        pytest.param(lambda p, nonce: None, id="missing"),
    ],
)
def test_a_forged_or_foreign_id_token_is_refused_and_nobody_is_signed_in(client, sso, forge):
    params = start(client)
    sso.id_token = forge(sso, params["nonce"])
    response = callback(client, params["state"])
    assert response.status_code == 400
    assert "could not be verified" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_a_callback_with_an_unknown_state_is_refused(client, sso):
    start(client)
    response = callback(client, "forged-state")
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_person_in_no_mapped_group_is_refused_with_a_page_saying_why(client, sso):
    sso.userinfo = {"sub": "u-42", "groups": ["contractors"]}
    params = start(client)
    sso.id_token = sso.token(params["nonce"])
    response = callback(client, params["state"])
    assert response.status_code == 403
    page = response.content.decode()
    assert "Sign-in refused" in page and "none of the groups that may use Firebreak" in page
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_userinfo_for_another_subject_is_not_believed(client, sso):
    sso.userinfo = {"sub": "someone-else", "groups": ["firebreak-admins"]}
    params = start(client)
    sso.id_token = sso.token(params["nonce"])
    assert callback(client, params["state"]).status_code == 400
    assert not SsoIdentity.objects.exists()


@pytest.mark.django_db
def test_a_provider_5xx_at_the_code_exchange_answers_503_with_retry_after(client, sso):
    sso.token_status = 503
    params = start(client)
    response = callback(client, params["state"])
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Acme SSO is unreachable" in response.content.decode()


@pytest.fixture
def provider_down(settings):
    settings.FIREBREAK_OIDC_ISSUER = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.FIREBREAK_OIDC_CLIENT_ID = CLIENT_ID
    settings.FIREBREAK_OIDC_ROLE_GROUPS = "responder=oncall"
    settings.FIREBREAK_OIDC_PROVIDER_NAME = "Acme SSO"
    discovery_forget()
    yield
    discovery_forget()


@pytest.mark.django_db
def test_a_provider_that_is_down_is_named_on_the_login_page_and_start_answers_503(client, provider_down):
    page = client.get("/accounts/login/").content.decode()
    assert "Acme SSO is unreachable" in page
    assert 'href="/accounts/sso/start/"' not in page
    response = client.get("/accounts/sso/start/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"


@pytest.mark.django_db
def test_firebreak_starts_and_answers_while_the_provider_is_down(client, provider_down):
    call_command("check")  # start-up's checks fetch nothing
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200
    for _ in range(3):  # the failure is remembered: the login page does not wait on the provider each time
        assert client.get("/accounts/login/").status_code == 200
    assert time.monotonic() - started < 3


@pytest.mark.django_db
def test_break_glass_admin_logs_in_with_a_password_while_the_provider_is_down(client, provider_down, make_user):
    make_user("admin", username="breakglass")
    response = client.post("/accounts/login/", {"username": "breakglass", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_with_sso_on_a_non_admin_cannot_use_the_password_form(client, sso, make_user):
    make_user("responder", username="rita")
    response = client.post("/accounts/login/", {"username": "rita", "password": "pw-for-tests-1"})
    assert response.status_code == 200
    assert "Sign in with Acme SSO: with single sign-on on, only admins log in with a password." in (
        response.content.decode()
    )
    assert "_auth_user_id" not in client.session
