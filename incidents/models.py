from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from agents.models import Agent
from core import clock
from traces.models import Trace


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1"
    SEV2 = "SEV2", "SEV2"
    SEV3 = "SEV3", "SEV3"


SEVERITY_DEFINITIONS = {
    Severity.SEV1: "The agent took an action that affected production systems, corrupted data or exposed "
    "sensitive information. Immediate response; post-mortem within 48 hours.",
    Severity.SEV2: "Incorrect output passed automated checks and was caught in human review. "
    "Investigate within an hour.",
    Severity.SEV3: "The agent failed a task or produced obviously wrong output that was caught at once. "
    "A learning opportunity.",
}


class FailureClass(models.Model):
    """A class of agent failure from the taxonomy: editable data, with its signals and runbook."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField()
    signals = models.JSONField(default=list, help_text="What it looks like in traces and metrics")
    detectors = models.JSONField(default=list, help_text="Detector names that raise it")
    runbook = models.JSONField(
        default=list, help_text='Steps: [{"phase": "contain|assess|remediate|learn", "text": "..."}]'
    )
    default_severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV2)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "name"]
        verbose_name_plural = "failure classes"

    def __str__(self):
        return self.name


class IncidentStatus(models.TextChoices):
    DECLARED = "declared", "Declared"
    INVESTIGATING = "investigating", "Investigating"
    CONTAINED = "contained", "Contained"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


STATUS_ORDER = [s.value for s in IncidentStatus]
OPEN_STATUSES = [IncidentStatus.DECLARED, IncidentStatus.INVESTIGATING, IncidentStatus.CONTAINED]


class Incident(models.Model):
    number = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=4, choices=Severity.choices)
    # Null until triage classifies it ("Not yet classified"); required before the post-mortem is published.
    failure_class = models.ForeignKey(
        FailureClass, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents"
    )
    status = models.CharField(max_length=15, choices=IncidentStatus.choices, default=IncidentStatus.DECLARED)
    summary = models.TextField(blank=True)
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="commanded_incidents"
    )
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="declared_incidents"
    )
    agents = models.ManyToManyField(Agent, blank=True, related_name="incidents")
    traces = models.ManyToManyField(Trace, blank=True, related_name="incidents")
    declared_at = models.DateTimeField(default=clock.now)
    investigating_at = models.DateTimeField(null=True, blank=True)
    contained_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-number"]
        indexes = [models.Index(fields=["status", "-declared_at"])]

    def __str__(self):
        return f"{self.ref} {self.title}"

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status not in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)

    def status_time(self, status: str) -> datetime | None:
        return getattr(self, f"{status}_at")


class TimelineKind(models.TextChoices):
    DECLARED = "declared", "Declared"
    STATUS = "status", "Status change"
    SEVERITY = "severity", "Severity change"
    GATE = "gate", "Gate action"
    ALERT = "alert", "Alert"
    FLAG = "flag", "Flagged step"
    NOTE = "note", "Note"
    RUNBOOK = "runbook", "Runbook"
    BLAST_RADIUS = "blast_radius", "Blast radius"
    POSTMORTEM = "postmortem", "Post-mortem"
    EVAL = "eval", "Eval"


class TimelineEntry(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=15, choices=TimelineKind.choices)
    body = models.TextField(help_text="Markdown; rendered and sanitized")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "timeline entries"

    def __str__(self):
        return f"{self.incident.ref} {self.kind} {self.created_at:%H:%M:%S}"


class Alert(models.Model):
    """A detector's finding, or an alert from the monitoring outside (Alertmanager, Grafana, Datadog, a
    webhook), deduplicated by fingerprint. An outside alert may name no registered agent: ``agent`` None."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    class Source(models.TextChoices):
        FIREBREAK = "firebreak", "Firebreak"
        ALERTMANAGER = "alertmanager", "Alertmanager"
        GRAFANA = "grafana", "Grafana"
        DATADOG = "datadog", "Datadog"
        WEBHOOK = "webhook", "Webhook"

    detector = models.CharField(max_length=100)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.FIREBREAK)
    source_url = models.URLField(max_length=2000, blank=True, help_text="the alert at its source (generatorURL…)")
    integration = models.CharField(max_length=100, blank=True, help_text="the integration key's name that posted it")
    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    span_id = models.CharField(max_length=16, blank=True)
    fingerprint = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=300)
    suggested_severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV2)
    failure_class = models.ForeignKey(FailureClass, null=True, blank=True, on_delete=models.SET_NULL)
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.OPEN)
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    first_seen = models.DateTimeField(default=clock.now)
    last_seen = models.DateTimeField(default=clock.now, db_index=True)
    count = models.PositiveIntegerField(default=1)
    handled_by = models.CharField(max_length=200, blank=True, help_text="who acknowledged or resolved it last")
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        indexes = [models.Index(fields=["agent", "status"])]

    def __str__(self):
        return f"{self.detector}: {self.title}"


class PostMortemTemplate(models.Model):
    """A post-mortem template: ordered sections, each a title and the question it answers."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    sections = models.JSONField(help_text='[{"key": "what", "title": "What did the agent do?", "prompt": "..."}]')
    default_for = models.JSONField(default=list, blank=True, help_text='Severities it is the default for: ["SEV1"]')
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "name"]

    def __str__(self):
        return self.name


class PostMortem(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    template = models.ForeignKey(PostMortemTemplate, null=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    sections = models.JSONField(default=list, help_text="[{key, title, prompt, body}] copied from the template")
    attached_traces = models.ManyToManyField(Trace, blank=True, related_name="postmortems")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    due_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Post-mortem {self.incident.ref}"

    @property
    def is_overdue(self) -> bool:
        return bool(self.due_at and self.status != self.Status.PUBLISHED and timezone.now() > self.due_at)


class ActionItem(models.Model):
    class Kind(models.TextChoices):
        EVAL_CASE = "eval_case", "Eval case"
        CANARY = "canary", "Canary"
        CIRCUIT_BREAKER = "circuit_breaker", "Circuit breaker / budget setting"
        VERSION_PIN = "version_pin", "Version pin"
        PERMISSION = "permission", "Permission change"
        PROMPT = "prompt", "Prompt change"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    class Tracker(models.TextChoices):
        JIRA = "jira", "Jira"
        LINEAR = "linear", "Linear"
        GITHUB = "github", "GitHub"

    class IssueState(models.TextChoices):
        NONE = "", "Not sent"
        PENDING = "pending", "Creating"
        CREATED = "created", "Created"
        FAILED = "failed", "Failed"

    postmortem = models.ForeignKey(PostMortem, on_delete=models.CASCADE, related_name="action_items")
    title = models.CharField(max_length=300)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    done_at = models.DateTimeField(null=True, blank=True)
    # The issue in the team's tracker (incidents/integrations/trackers): written only by its services.
    tracker = models.CharField(max_length=10, choices=Tracker.choices, blank=True)
    issue_state = models.CharField(max_length=10, choices=IssueState.choices, blank=True, default=IssueState.NONE)
    issue_key = models.CharField(max_length=100, blank=True, help_text="PROJ-12 (Jira), ENG-7 (Linear), 42 (GitHub)")
    issue_url = models.URLField(max_length=500, blank=True)
    issue_status = models.CharField(max_length=100, blank=True, help_text="the issue's status in the tracker")

    class Meta:
        ordering = ["status", "due_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tracker", "issue_key"],
                condition=~models.Q(issue_key=""),
                name="action_item_one_item_per_issue",
            )
        ]

    def __str__(self):
        return self.title

    @property
    def is_structural(self) -> bool:
        return self.kind != self.Kind.PROMPT


class RunbookPhase(models.TextChoices):
    CONTAIN = "contain", "Contain"
    ASSESS = "assess", "Assess"
    REMEDIATE = "remediate", "Remediate"
    LEARN = "learn", "Learn"


class RunbookStep(models.Model):
    """One step of an incident's own runbook, copied at declaration from its class and severity."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="runbook_steps")
    phase = models.CharField(max_length=10, choices=RunbookPhase.choices)
    text = models.CharField(max_length=500)
    order = models.PositiveSmallIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["incident", "order", "id"]

    def __str__(self):
        return f"{self.incident.ref} {self.phase}: {self.text}"

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class DetectorSetting(models.Model):
    """Thresholds and rule of one detector, for all agents (agent empty) or one agent (overrides)."""

    class Rule(models.TextChoices):
        NOTIFY = "notify", "Notify"
        PAGE = "page", "Page on-call"
        PAUSE = "pause", "Pause the agent"
        DECLARE = "declare", "Declare an incident"
        DEGRADE = "degrade", "Step the agent one level down its fallback ladder"

    detector = models.CharField(max_length=100)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="detector_settings")
    enabled = models.BooleanField(default=True)
    thresholds = models.JSONField(default=dict, blank=True, help_text="overrides of the detector's defaults")
    rule = models.CharField(max_length=10, choices=Rule.choices, blank=True, help_text="empty: the detector's default")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["detector", "agent"], name="detector_setting_unique"),
            models.UniqueConstraint(
                fields=["detector"], condition=models.Q(agent__isnull=True), name="detector_setting_global_unique"
            ),
        ]

    def __str__(self):
        return f"{self.detector} ({self.agent or 'all agents'})"


class DetectionBacklog(models.Model):
    """Traces of a committed batch whose streaming detection could not be queued (the broker was down).

    Written by the ``spans_ingested`` receiver, drained by a beat task once the broker answers again,
    so no batch goes without detection.
    """

    trace_pks = ArrayField(models.BigIntegerField())
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"detection of {len(self.trace_pks)} traces, waiting since {self.created_at:%H:%M:%S}"


class Delivery(models.Model):
    """One message Firebreak sent (or tried to send) to the outside: a notification, a page, a chat
    post, a tracker issue. The delivery log on the alert, incident and agent pages reads these.

    Written only through ``incidents.notifications.deliveries``. ``target`` names the destination
    without its secret (a route name, a host, a channel), never a URL with a token in it.
    """

    class Channel(models.TextChoices):
        APPRISE = "apprise", "Notification"
        PAGERDUTY = "pagerduty", "PagerDuty"
        SLACK = "slack", "Slack"
        TRACKER = "tracker", "Issue tracker"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    channel = models.CharField(max_length=20, choices=Channel.choices)
    target = models.CharField(max_length=200)
    event = models.CharField(max_length=60, help_text="what happened: alert.raised, gate.killed, incident.declared…")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="why the last attempt failed, in words")
    detail = models.JSONField(default=dict, blank=True, help_text="what was sent, without secrets (e.g. dedup_key)")
    created_at = models.DateTimeField(default=clock.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["alert", "-created_at"]),
            models.Index(fields=["incident", "-created_at"]),
            models.Index(fields=["agent", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} → {self.target}: {self.status}"


# --- Slack (issue 14: chat where the incident is worked) -------------------------------------------


class SlackUser(models.Model):
    """A Slack member mapped to the Firebreak user a button press or ``/firebreak`` command acts as.

    Made by an admin (in the admin), or once by the app itself when the Slack member's e-mail
    (``users.info``, scope ``users:read.email``) matches exactly one active Firebreak user's.
    """

    slack_user_id = models.CharField(max_length=32, unique=True, help_text="the member ID, e.g. U024BE7LH")
    team_id = models.CharField(max_length=32, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_accounts")
    linked_by = models.CharField(max_length=20, default="admin", help_text="admin or email")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        verbose_name = "Slack user"

    def __str__(self) -> str:
        return f"{self.slack_user_id} → {self.user}"


class SlackChannel(models.Model):
    """The Slack channel an incident is worked in, and how far its timeline has been posted there."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="slack_channel")
    channel_id = models.CharField(max_length=32)
    name = models.CharField(max_length=80)
    posted_through = models.BigIntegerField(default=0, help_text="the last timeline entry id posted in the channel")
    summary_ts = models.CharField(max_length=32, blank=True, help_text="the incident summary's message, once posted")
    commander_invited = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"#{self.name} (INC-{self.incident.number})"


class SlackAlertMessage(models.Model):
    """The message that carries an alert's buttons in the alerts channel (updated as the alert moves)."""

    alert = models.OneToOneField(Alert, on_delete=models.CASCADE, related_name="slack_message")
    channel_id = models.CharField(max_length=32)
    ts = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"alert {self.alert_id} in {self.channel_id} at {self.ts}"


class ModelSnapshot(models.Model):
    """The first response model seen for an agent's expected model name (providers answer
    ``gpt-4o`` with a dated snapshot such as ``gpt-4o-2024-08-06``): the silent model change
    detector raises when a later response names a different one."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="model_snapshots")
    expected = models.CharField(max_length=200)
    response = models.CharField(max_length=200)
    first_trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_seen_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "expected"], name="modelsnapshot_once_per_name")]

    def __str__(self) -> str:
        return f"{self.agent} {self.expected} -> {self.response}"


# Hourly rollups the scheduled detectors read (their own module: incidents/detection/models.py).
from incidents.detection.models import DetectorRollup, RolledHour  # noqa: E402, F401
