"""Writes of single sign-on: the user a provider vouches for, with the role its groups map to."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from core.clock import now
from core.roles import ROLES
from core.sso.models import SsoIdentity

USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


class SsoRefused(Exception):
    """The provider's person may not sign in; ``str()`` is the reason shown on the refusal page."""


def sso_username(claims: dict[str, Any]) -> str:
    """The new user's name: ``preferred_username``, else ``email``; SsoRefused when neither is usable."""
    for key in ("preferred_username", "email"):
        value = claims.get(key)
        if isinstance(value, str) and USERNAME_RE.match(value.strip()):
            return value.strip()
    raise SsoRefused("The provider sent no usable preferred_username or email for this account.")


@transaction.atomic
def sso_user_sign_in(*, issuer: str, claims: dict[str, Any], role: str, groups: list[str]) -> AbstractUser:
    """The local user of (issuer, claims["sub"]), created on first sign-in, with exactly ``role``.

    Every sign-in replaces the user's role groups (viewer/responder/admin) with ``role``, so a person
    the provider moved out of a group loses that role now. A new user gets no usable password (they sign
    in through the provider only). Raises SsoRefused (nothing written) when the name a new user would
    take belongs to a local account not linked to this provider person.
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SsoRefused("The provider's token has no subject (sub).")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    stamp = now()
    user_model = get_user_model()
    identity = SsoIdentity.objects.select_related("user").select_for_update().filter(issuer=issuer, subject=subject)
    link = identity.first()
    if link is None:
        username = sso_username(claims)
        if user_model.objects.filter(username__iexact=username).exists():
            raise SsoRefused(
                f"A local account named {username!r} already exists and is not linked to this sign-in. "
                "An admin can rename or remove it."
            )
        user = user_model.objects.create_user(username=username, email=_email(claims))
        user.set_unusable_password()
        user.save(update_fields=["password"])
        link = SsoIdentity.objects.create(
            issuer=issuer, subject=subject, user=user, created_at=stamp, last_login_at=stamp, last_groups=groups
        )
    else:
        user = link.user
        if not user.is_active:
            raise SsoRefused("This account is deactivated in Firebreak.")
        email = _email(claims)
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        link.last_login_at = stamp
        link.last_groups = groups
        link.save(update_fields=["last_login_at", "last_groups"])
    role_groups = [Group.objects.get_or_create(name=name)[0] for name in ROLES]
    user.groups.remove(*role_groups)
    user.groups.add(next(group for group in role_groups if group.name == role))
    return user


def _email(claims: dict[str, Any]) -> str:
    email = claims.get("email")
    return email.strip()[:254] if isinstance(email, str) else ""


@transaction.atomic
def sso_user_roles_clear(*, issuer: str, subject: str) -> bool:
    """Take the role groups from the user of (issuer, subject), if there is one: the provider no longer
    puts them in any mapped group. Returns whether such a user exists. Their sign-in is refused."""
    link = SsoIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if link is None:
        return False
    link.user.groups.remove(*Group.objects.filter(name__in=ROLES))
    return True
