from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Evals"

    def ready(self):
        # Here, not at the top: apps.py is imported before the app registry is ready, and these import models.
        from evals.closure import eval_case_green
        from evals.selectors import retention_kept_traces
        from incidents import hooks
        from traces import hooks as trace_hooks

        if eval_case_green not in hooks.closure_checks:
            hooks.closure_checks.append(eval_case_green)
        if retention_kept_traces not in trace_hooks.retention_keepers:
            trace_hooks.retention_keepers.append(retention_kept_traces)
