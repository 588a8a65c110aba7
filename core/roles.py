"""Roles: viewer < responder < admin, carried by Django groups of those names.

Superusers are admins. A user in no group is a viewer: everyone who can log
in can look; acting needs a role.
"""

from functools import wraps

from django.core.exceptions import PermissionDenied

VIEWER, RESPONDER, ADMIN = "viewer", "responder", "admin"
ROLES = (VIEWER, RESPONDER, ADMIN)
_RANK = {VIEWER: 0, RESPONDER: 1, ADMIN: 2}


def roles_seed(apps) -> None:
    """Create the role groups (used by a migration and the browser tests)."""
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


def user_role(user) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_firebreak_role", None)
    if cached:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = ADMIN if ADMIN in names else RESPONDER if RESPONDER in names else VIEWER
    user._firebreak_role = role
    return role


def has_role(user, role: str) -> bool:
    current = user_role(user)
    return current is not None and _RANK[current] >= _RANK[role]


def role_required(role: str):
    """View decorator: 403 unless the user holds ``role`` or higher."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def role_context(request):
    role = user_role(getattr(request, "user", None))
    return {
        "user_role": role,
        "can_respond": role in (RESPONDER, ADMIN),
        "is_fb_admin": role == ADMIN,
    }
