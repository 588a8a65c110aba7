"""Sign in with the provider, its callback, the login page that offers it, and logout."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render, resolve_url
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from core.sso.backends import REFUSAL_ATTRIBUTE
from core.sso.config import SsoConfig, sso_config
from core.sso.discovery import RETRY_SECONDS, ProviderUnreachable, provider_metadata, provider_metadata_cached
from core.sso.forms import BreakGlassAuthenticationForm

log = logging.getLogger(__name__)


def _oidc_setting(attr: str, *default: Any) -> Any:
    """mozilla-django-oidc's settings, with the client and endpoints from FIREBREAK_OIDC_* and discovery."""
    config = sso_config()
    if config is not None:
        if attr == "OIDC_RP_CLIENT_ID":
            return config.client_id
        if attr == "OIDC_OP_AUTHORIZATION_ENDPOINT":
            return provider_metadata(config.issuer).authorization_endpoint
    return import_from_settings(attr, *default)


class _StartView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(_oidc_setting)


class _CallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(_oidc_setting)

    def login_failure(self) -> HttpResponse:
        reason = getattr(self.request, REFUSAL_ATTRIBUTE, None)
        if reason:
            return _refused(self.request, reason, status=403)
        error = self.request.GET.get("error")
        if error:
            # The provider's own words are untrusted: only its error code is shown (escaped by the template).
            return _refused(self.request, f"The provider ended the sign-in ({error[:80]}).", status=400)
        return _refused(self.request, "The sign-in did not complete. Try again.", status=400)


def _refused(request: HttpRequest, reason: str, *, status: int) -> HttpResponse:
    config = sso_config()
    context = {"reason": reason, "provider": config.provider_name if config else "the provider"}
    return render(request, "sso/refused.html", context, status=status)


def _unavailable(request: HttpRequest, config: SsoConfig, why: str) -> HttpResponse:
    log.warning("single sign-on: %s unreachable: %s", config.provider_name, why)
    response = render(request, "sso/unavailable.html", {"provider": config.provider_name}, status=503)
    response["Retry-After"] = str(int(RETRY_SECONDS))
    return response


def _config_or_404() -> SsoConfig:
    config = sso_config()
    if config is None:
        raise Http404("Single sign-on is not configured.")
    return config


@login_not_required
def sso_start(request: HttpRequest) -> HttpResponseBase:
    """Send the browser to the provider (state, nonce and PKCE kept in the session)."""
    config = _config_or_404()
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    try:
        provider_metadata(config.issuer)
    except ProviderUnreachable as exc:
        return _unavailable(request, config, str(exc))
    response: HttpResponseBase = _StartView.as_view()(request)
    return response


@login_not_required
def sso_callback(request: HttpRequest) -> HttpResponseBase:
    """The provider's redirect back: code → tokens → verified ID token → the user, with the mapped role."""
    config = _config_or_404()
    try:
        response: HttpResponseBase = _CallbackView.as_view()(request)
    except ProviderUnreachable as exc:
        return _unavailable(request, config, str(exc))
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status == 429:
            return _unavailable(request, config, f"{status} from the provider")
        log.warning("single sign-on: the provider refused the code exchange (%s)", status)
        reason = "The provider did not accept this sign-in (it may have expired). Try again."
        return _refused(request, reason, status=400)
    except requests.RequestException as exc:
        return _unavailable(request, config, exc.__class__.__name__)
    except SuspiciousOperation as exc:
        log.warning("single sign-on refused: %s", exc)
        return _refused(request, "The sign-in could not be verified. Start again from the login page.", status=400)
    return response


def sso_login_context() -> dict[str, Any]:
    """What the login page shows of SSO: nothing when off, else the provider's name and whether it answers."""
    config = sso_config()
    if config is None:
        return {"sso": None}
    try:
        provider_metadata(config.issuer)
        reachable = True
    except ProviderUnreachable:
        reachable = False
    return {"sso": {"name": config.provider_name, "reachable": reachable}}


@login_not_required
def login(request: HttpRequest) -> HttpResponseBase:
    """The login page: "Sign in with <provider>" when SSO is on, the password form as break-glass."""
    view = auth_views.LoginView.as_view(
        authentication_form=BreakGlassAuthenticationForm, extra_context=sso_login_context()
    )
    response: HttpResponseBase = view(request)
    return response


@login_not_required
def logout(request: HttpRequest) -> HttpResponseBase:
    """End the local session; after an SSO sign-in, also at the provider when it advertises end_session_endpoint.

    The provider's logout is reached from a page (a meta refresh and a link), not by redirecting the
    logout form's POST: the CSP's form-action 'self' would stop a form's redirect to another origin.
    """
    config = sso_config()
    id_token = request.session.get("oidc_id_token") if request.method == "POST" else None
    metadata = provider_metadata_cached(config.issuer) if config and id_token else None
    if config is None or not id_token or metadata is None or not metadata.end_session_endpoint:
        response: HttpResponseBase = auth_views.LogoutView.as_view()(request)
        return response
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": config.client_id,
            "post_logout_redirect_uri": request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL)),
        }
    )
    auth.logout(request)
    context = {"provider": config.provider_name, "end_session_url": f"{metadata.end_session_endpoint}?{query}"}
    return render(request, "sso/signed_out.html", context)
