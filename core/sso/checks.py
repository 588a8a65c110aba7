"""A wrong FIREBREAK_OIDC_ROLE_GROUPS stops start-up with the reason, rather than refusing every login."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from core.sso.config import RoleGroupsError, role_groups_parse


@register()
def role_groups_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        role_groups_parse(getattr(settings, "FIREBREAK_OIDC_ROLE_GROUPS", ""))
    except RoleGroupsError as exc:
        return [Error(str(exc), hint="e.g. admin=firebreak-admins,responder=oncall,viewer=*", id="sso.E001")]
    return []
