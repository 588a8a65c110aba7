from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "Traces"

    def ready(self):
        # Here, not at the top: apps.py is imported before the app registry is ready, and runs imports models.
        from agents import hooks
        from traces.selectors.runs import session_spend_p50
        from traces.selectors.spend import agent_spend_today

        if session_spend_p50 not in hooks.spend_estimators:
            hooks.spend_estimators.append(session_spend_p50)
        if agent_spend_today not in hooks.daily_spenders:
            hooks.daily_spenders.append(agent_spend_today)
