from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and the gate"

    def ready(self) -> None:
        from agents import schema  # noqa: F401 - registers the OpenAPI auth scheme
