from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        from agents import hooks
        from agents.signals import gate_changed
        from incidents import receivers

        gate_changed.connect(receivers.on_gate_changed, dispatch_uid="incidents.gate_timeline")
        if receivers.resume_needs_admin_for_open_sev1 not in hooks.resume_checks:
            hooks.resume_checks.append(receivers.resume_needs_admin_for_open_sev1)
