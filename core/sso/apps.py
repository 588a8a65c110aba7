from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "core.sso"
    label = "sso"
    verbose_name = "Single sign-on (OpenID Connect)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.sso import checks  # noqa: F401  (registers the settings check)
