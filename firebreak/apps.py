from django.apps import AppConfig


class FirebreakConfig(AppConfig):
    name = "firebreak"
    verbose_name = "Firebreak"
