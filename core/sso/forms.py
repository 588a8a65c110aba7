from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from core.roles import ADMIN, has_role
from core.sso.config import sso_config


class BreakGlassAuthenticationForm(AuthenticationForm):
    """The password login. With single sign-on on, it is the admins' break-glass way in only."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your user name and password did not match. Try again.",
        "sso_only": "Sign in with %(provider)s: with single sign-on on, only admins log in with a password.",
    }

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        config = sso_config()
        if config is not None and not has_role(user, ADMIN):
            raise ValidationError(
                self.error_messages["sso_only"], code="sso_only", params={"provider": config.provider_name}
            )
