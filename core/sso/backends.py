"""The authentication backend: mozilla-django-oidc's code flow, Firebreak's discovery, checks and roles."""

from __future__ import annotations

from typing import Any

import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from core.sso.config import SsoConfig, role_for_groups, sso_config
from core.sso.discovery import ProviderMetadata, provider_metadata
from core.sso.services import SsoRefused, sso_user_roles_clear, sso_user_sign_in

SIGN_ALGORITHM = "RS256"
LEEWAY_SECONDS = 60
REFUSAL_ATTRIBUTE = "firebreak_sso_refusal"


def claim_groups(claims: dict[str, Any], claim: str) -> list[str]:
    """The groups a claim carries: a list of names or one name; a dotted name reaches into objects
    (Keycloak's ``realm_access.roles``) when no claim has that exact name."""
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


class FirebreakOidcBackend(OIDCAuthenticationBackend):
    """Signs in the person an ID token (RS256, the provider's JWKS) vouches for, with the mapped role.

    Refusals (no mapped group, a name taken by a local account) return None and leave the reason on
    the request for the callback page. ProviderUnreachable and requests' errors propagate: the callback
    view answers them with 503.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds every backend at every authenticate(), the break-glass password login's too: nothing
        # here may ask the provider, or a provider that is down would slow the way in that must work then.
        self.UserModel = get_user_model()
        self.OIDC_RP_SIGN_ALGO = SIGN_ALGORITHM
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractBaseUser | None:
        # Only the callback view passes a nonce: a password login (or anything else) is never ours.
        config = sso_config()
        if request is None or config is None or "nonce" not in kwargs:
            return None
        metadata = provider_metadata(config.issuer)
        self.config: SsoConfig = config
        self.metadata: ProviderMetadata = metadata
        self.OIDC_OP_TOKEN_ENDPOINT = metadata.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = metadata.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = metadata.jwks_uri
        self.OIDC_RP_CLIENT_ID = config.client_id
        self.OIDC_RP_CLIENT_SECRET = config.client_secret
        user: AbstractBaseUser | None = super().authenticate(request, **kwargs)
        return user

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        # The client authenticates the way the provider says it accepts: HTTP Basic (the default of
        # OpenID Connect) unless it only lists client_secret_post.
        self.use_basic_auth = "client_secret_basic" in self.metadata.token_auth_methods
        token: dict[str, Any] = super().get_token(payload)
        return token

    def get_settings(self, attr: str, *default: Any) -> Any:
        if attr == "OIDC_TOKEN_USE_BASIC_AUTH":
            return getattr(self, "use_basic_auth", False)
        return import_from_settings(attr, *default)

    def verify_token(self, token: Any, **kwargs: Any) -> dict[str, Any]:
        """The ID token's claims; SuspiciousOperation for anything but an RS256 token signed with a key of the
        provider's JWKS (a token with another algorithm, no key id or no JWT at all included)."""
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.InvalidTokenError, TypeError, ValueError) as exc:
            raise SuspiciousOperation("ID token is not a JWT") from exc
        if header.get("alg") != SIGN_ALGORITHM:
            raise SuspiciousOperation(f"ID token signed with {header.get('alg')!r}, not {SIGN_ALGORITHM}")
        if not isinstance(header.get("kid"), str):
            raise SuspiciousOperation("ID token names no signing key (kid)")
        claims: dict[str, Any] = super().verify_token(token, **kwargs)
        return claims

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        """The token's claims, once its signature (the provider's key), issuer, audience and times check out.

        mozilla-django-oidc checks the signature and expiry only; OpenID Connect Core §3.1.3.7 asks for
        the issuer and the audience as well (and azp when there are several audiences).
        """
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != SIGN_ALGORITHM:
            raise SuspiciousOperation(f"ID token signed with {header.get('alg')!r}, not {SIGN_ALGORITHM}")
        try:
            claims: dict[str, Any] = jwt.decode(
                payload,
                key,
                algorithms=[SIGN_ALGORITHM],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=self.metadata.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("ID token for several audiences without this client as azp")
        return claims

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> AbstractBaseUser | None:
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = self.get_userinfo(access_token, id_token, payload)
            # OpenID Connect Core §5.3.2: the UserInfo sub MUST be the ID token's, else the answer is not used.
            if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("UserInfo answered for another subject")
            claims.update(userinfo)
        groups = claim_groups(claims, self.config.groups_claim)
        role = role_for_groups(self.config.role_groups, set(groups))
        if role is None:
            subject = claims.get("sub")
            if isinstance(subject, str):
                sso_user_roles_clear(issuer=self.metadata.issuer, subject=subject)
            self._refuse(
                f"Your {self.config.provider_name} account is in none of the groups that may use Firebreak "
                f"(claim {self.config.groups_claim!r}). Ask an admin to add you to one."
            )
            return None
        try:
            user: AbstractBaseUser = sso_user_sign_in(
                issuer=self.metadata.issuer, claims=claims, role=role, groups=groups
            )
        except SsoRefused as exc:
            self._refuse(str(exc))
            return None
        return user

    def _refuse(self, reason: str) -> None:
        setattr(self.request, REFUSAL_ATTRIBUTE, reason)
