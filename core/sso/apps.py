from django.apps import AppConfig

from core.sso import checks  # noqa: F401  (importing it registers the FIREBREAK_OIDC_ROLE_GROUPS check)


class SsoConfig(AppConfig):
    name = "core.sso"
    label = "sso"
    verbose_name = "Single sign-on (OpenID Connect)"
    default_auto_field = "django.db.models.BigAutoField"
