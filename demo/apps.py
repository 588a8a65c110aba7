from django.apps import AppConfig
from django.db.models.signals import post_save

from agents.signals import gate_changed
from incidents.signals import alert_changed, timeline_recorded
from traces.signals import step_flagged


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo fleet"

    def ready(self):
        # In ready(): the receivers import models, which exist only once every app is loaded.
        from demo.gamedays import receivers
        from demo.gamedays import tasks as gameday_tasks  # noqa: F401
        from evals.models import EvalCase

        gate_changed.connect(receivers.on_gate_changed, dispatch_uid="demo.gameday_gate")
        alert_changed.connect(receivers.on_alert_changed, dispatch_uid="demo.gameday_alert")
        step_flagged.connect(receivers.on_step_flagged, dispatch_uid="demo.gameday_flag")
        timeline_recorded.connect(receivers.on_timeline_recorded, dispatch_uid="demo.gameday_timeline")
        post_save.connect(receivers.on_eval_case_saved, sender=EvalCase, dispatch_uid="demo.gameday_eval")
