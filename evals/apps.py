from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Evals"

    def ready(self):
        from evals.closure import eval_case_green
        from incidents import hooks

        if eval_case_green not in hooks.closure_checks:
            hooks.closure_checks.append(eval_case_green)
