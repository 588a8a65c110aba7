"""A gameday: a drill (or a tabletop exercise) timed against the five-minute runbook."""

from django.conf import settings
from django.db import models

from agents.models import Agent
from core import clock


class Scenario(models.TextChoices):
    RUNAWAY_LOOP = "runaway-loop", "Runaway loop"
    TOOL_MISUSE = "tool-misuse", "Tool misuse"
    CONTEXT_DRIFT = "context-drift", "Context drift"
    SAFETY_BYPASS = "safety-bypass", "Safety bypass"
    COST_SPIRAL = "cost-spiral", "Cost spiral"
    SILENT_MODEL_CHANGE = "silent-model-change", "Silent model change"


class GamedayMode(models.TextChoices):
    DRILL = "drill", "Drill (a simulated agent process injects the failure)"
    TABLETOP = "tabletop", "Tabletop (the clock only, nothing injected)"


class GamedayStatus(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


# The clock's marks in the runbook's order: (field, minute of the five-minute runbook or None, label).
MARKS = (
    ("detected", None, "detected"),
    ("contained", 1, "contained (kill or pause)"),
    ("budget_frozen", 2, "budget frozen"),
    ("step_flagged", 3, "off-rails step flagged"),
    ("blast_radius", 4, "blast radius run"),
    ("eval_captured", 5, "eval case captured"),
)
MARK_FIELDS = tuple(name for name, _, _ in MARKS)


class Gameday(models.Model):
    scenario = models.CharField(max_length=30, choices=Scenario.choices)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="gamedays")
    mode = models.CharField(max_length=10, choices=GamedayMode.choices, default=GamedayMode.DRILL)
    status = models.CharField(max_length=10, choices=GamedayStatus.choices, default=GamedayStatus.RUNNING)
    agent_created = models.BooleanField(default=False, help_text="a drill agent registered for this gameday")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(default=clock.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    injection_error = models.TextField(blank=True)
    detected = models.DateTimeField(null=True, blank=True)
    contained = models.DateTimeField(null=True, blank=True)
    budget_frozen = models.DateTimeField(null=True, blank=True)
    step_flagged = models.DateTimeField(null=True, blank=True)
    blast_radius = models.DateTimeField(null=True, blank=True)
    eval_captured = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "demo"
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"gameday {self.pk} {self.scenario} on {self.agent_id}"

    @property
    def ref(self) -> str:
        return f"GD-{self.pk}"

    def timings(self) -> dict[str, float | None]:
        """Each mark in seconds from the start (one decimal), None until it happens."""
        out: dict[str, float | None] = {}
        for name in MARK_FIELDS:
            at = getattr(self, name)
            out[name] = None if at is None else round(max((at - self.started_at).total_seconds(), 0.0), 1)
        return out
