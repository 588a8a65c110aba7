from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "Traces"

    def ready(self):
        from agents import hooks
        from traces.selectors import session_spend_p50

        if session_spend_p50 not in hooks.spend_estimators:
            hooks.spend_estimators.append(session_spend_p50)
