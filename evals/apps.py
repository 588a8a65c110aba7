from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Evals"

    def ready(self):
        # Here, not at the top: apps.py is imported before the app registry is ready, and these import models.
        from evals.closure import eval_case_green
        from incidents import hooks

        if eval_case_green not in hooks.closure_checks:
            hooks.closure_checks.append(eval_case_green)
