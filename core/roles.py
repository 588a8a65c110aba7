"""Roles: viewer < responder < admin, carried by Django groups of those names.

Superusers are admins. A user in no group is a viewer: everyone who can log
in can look; acting needs a role.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.apps.registry import Apps
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

R = TypeVar("R")

VIEWER, RESPONDER, ADMIN = "viewer", "responder", "admin"
ROLES = (VIEWER, RESPONDER, ADMIN)
_RANK = {VIEWER: 0, RESPONDER: 1, ADMIN: 2}


def roles_seed(apps: Apps) -> None:
    """Create the role groups (used by a migration and the browser tests)."""
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


def user_role(user: Any) -> str | None:
    """The role of a user (or of None, an anonymous user, an agent key's principal: None)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return ADMIN
    cached: str | None = getattr(user, "_firebreak_role", None)
    if cached:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = ADMIN if ADMIN in names else RESPONDER if RESPONDER in names else VIEWER
    user._firebreak_role = role
    return role


def has_role(user: Any, role: str) -> bool:
    current = user_role(user)
    return current is not None and _RANK[current] >= _RANK[role]


def role_required(role: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """View decorator: 403 unless the user holds ``role`` or higher."""

    def decorator(view: Callable[..., R]) -> Callable[..., R]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> R:
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def role_context(request: HttpRequest) -> dict[str, object]:
    role = user_role(getattr(request, "user", None))
    return {
        "user_role": role,
        "can_respond": role in (RESPONDER, ADMIN),
        "is_fb_admin": role == ADMIN,
    }
