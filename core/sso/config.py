"""The SSO settings, read when used (so tests and a changed environment see the current values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from core.roles import ADMIN, RESPONDER, ROLES, VIEWER

ANY_GROUP = "*"


class RoleGroupsError(ValueError):
    """FIREBREAK_OIDC_ROLE_GROUPS is not ``role=group`` pairs of known roles."""


def role_groups_parse(text: str) -> dict[str, frozenset[str]]:
    """``admin=firebreak-admins,responder=oncall,responder=sre,viewer=*`` → {role: groups}.

    Comma-separated ``role=group`` pairs; a role may appear more than once (any of its groups grants it);
    ``*`` means anyone the provider signs in. Group names are compared exactly as the claim carries them.
    """
    mapping: dict[str, set[str]] = {}
    for raw in text.split(","):
        pair = raw.strip()
        if not pair:
            continue
        role, sep, group = (part.strip() for part in pair.partition("="))
        if not sep or not group:
            raise RoleGroupsError(f"FIREBREAK_OIDC_ROLE_GROUPS: {pair!r} is not role=group")
        if role not in ROLES:
            raise RoleGroupsError(f"FIREBREAK_OIDC_ROLE_GROUPS: unknown role {role!r} (one of {', '.join(ROLES)})")
        mapping.setdefault(role, set()).add(group)
    return {role: frozenset(groups) for role, groups in mapping.items()}


def role_for_groups(mapping: dict[str, frozenset[str]], groups: set[str]) -> str | None:
    """The highest role any of ``groups`` maps to (``*`` matches everyone), or None: not let in."""
    for role in (ADMIN, RESPONDER, VIEWER):
        wanted = mapping.get(role, frozenset())
        if ANY_GROUP in wanted or wanted & groups:
            return role
    return None


@dataclass(frozen=True)
class SsoConfig:
    issuer: str
    client_id: str
    client_secret: str
    groups_claim: str
    role_groups: dict[str, frozenset[str]] = field(default_factory=dict)
    provider_name: str = ""


def sso_config() -> SsoConfig | None:
    """The configuration, or None when SSO is off (no FIREBREAK_OIDC_ISSUER or client id)."""
    issuer = getattr(settings, "FIREBREAK_OIDC_ISSUER", "").rstrip("/")
    client_id = getattr(settings, "FIREBREAK_OIDC_CLIENT_ID", "")
    if not issuer or not client_id:
        return None
    name = getattr(settings, "FIREBREAK_OIDC_PROVIDER_NAME", "") or urlsplit(issuer).hostname or issuer
    return SsoConfig(
        issuer=issuer,
        client_id=client_id,
        client_secret=getattr(settings, "FIREBREAK_OIDC_CLIENT_SECRET", ""),
        groups_claim=getattr(settings, "FIREBREAK_OIDC_GROUPS_CLAIM", "") or "groups",
        role_groups=role_groups_parse(getattr(settings, "FIREBREAK_OIDC_ROLE_GROUPS", "")),
        provider_name=name,
    )
