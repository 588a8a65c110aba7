from typing import NotRequired, TypedDict

from django.conf import settings
from django.db import models

from agents.models import Agent
from core import clock
from incidents.models import FailureClass, Incident, Severity
from traces.models import Trace


class ForbiddenAction(TypedDict):
    """One item of EvalCase.forbidden_actions (see evals.services for what it matches)."""

    tool: str
    arguments_pattern: NotRequired[str]  # a regular expression over the canonical JSON arguments
    max_calls: NotRequired[int]  # how many such calls are still fine (absent: 0, any call fails the case)


class EvalCase(models.Model):
    """A regression case captured from an incident's trace: the input that went wrong, and what must not recur."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="eval_cases")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="eval_cases")
    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.SET_NULL, related_name="eval_cases")
    flagged_span_id = models.CharField(max_length=16, blank=True)
    title = models.CharField(max_length=300)
    input = models.TextField(help_text="The trace's root input")
    expected_behaviour = models.TextField()
    forbidden_actions = models.JSONField(
        default=list, blank=True, help_text='[{"tool": "refund", "arguments_pattern": "amount.*"}]'
    )
    failure_class = models.ForeignKey(FailureClass, null=True, blank=True, on_delete=models.SET_NULL)
    severity = models.CharField(max_length=4, choices=Severity.choices, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"EC-{self.pk} {self.title}"


class EvalRun(models.Model):
    """One result of one case, posted by CI."""

    case = models.ForeignKey(EvalCase, on_delete=models.CASCADE, related_name="runs")
    passed = models.BooleanField()
    output = models.TextField(blank=True)
    version = models.CharField(max_length=200, blank=True, help_text="agent / model / prompt version it ran against")
    source = models.CharField(max_length=200, blank=True, help_text="CI job or runner")
    details = models.JSONField(default=dict, blank=True)
    ran_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["-ran_at", "-id"]
        indexes = [models.Index(fields=["case", "-ran_at"])]

    def __str__(self):
        return f"{self.case} {'pass' if self.passed else 'fail'} @ {self.ran_at:%Y-%m-%d %H:%M}"


class CanaryPrompt(models.Model):
    """A known input sent to an agent on a schedule through its canary webhook; the answer must meet an expectation."""

    class Expectation(models.TextChoices):
        CONTAINS = "contains", "Contains text"
        REGEX = "regex", "Matches regex"
        JSON_SCHEMA = "json_schema", "Valid against JSON schema"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="canaries")
    name = models.CharField(max_length=200)
    input = models.TextField()
    expectation = models.CharField(max_length=12, choices=Expectation.choices, default=Expectation.CONTAINS)
    expected = models.TextField(help_text="the text, the regex, or the JSON schema (as JSON)")
    interval_minutes = models.PositiveIntegerField(default=15)
    timeout_seconds = models.FloatField(default=10.0)
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="canary_unique_name")]

    def __str__(self):
        return f"{self.agent.slug}: {self.name}"


class CanaryRun(models.Model):
    class Outcome(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        TIMEOUT = "timeout", "Timeout"
        ERROR = "error", "Bad response"

    canary = models.ForeignKey(CanaryPrompt, on_delete=models.CASCADE, related_name="runs")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    output = models.TextField(blank=True)
    detail = models.TextField(blank=True, help_text="why it failed")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    ran_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-ran_at", "-id"]
        indexes = [models.Index(fields=["canary", "-ran_at"])]

    def __str__(self):
        return f"{self.canary} {self.outcome} @ {self.ran_at:%Y-%m-%d %H:%M}"
