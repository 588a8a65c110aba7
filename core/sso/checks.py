"""A wrong FIREBREAK_OIDC_ROLE_GROUPS stops start-up with the reason, rather than refusing every login."""

from typing import Any

from django.conf import settings
from django.core import checks

from core.sso.config import RoleGroupsError, role_groups_parse

HINT = "e.g. admin=firebreak-admins,responder=oncall,viewer=*"


@checks.register()
def role_groups_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        mapping = role_groups_parse(getattr(settings, "FIREBREAK_OIDC_ROLE_GROUPS", ""))
    except RoleGroupsError as exc:
        return [checks.Error(str(exc), hint=HINT, id="sso.E001")]
    if getattr(settings, "FIREBREAK_OIDC_ISSUER", "") and not mapping:
        return [
            checks.Warning(
                "Single sign-on is on but FIREBREAK_OIDC_ROLE_GROUPS is empty: it lets nobody in.",
                hint=HINT,
                id="sso.W001",
            )
        ]
    return []
