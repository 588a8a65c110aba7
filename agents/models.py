import hashlib
import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from core import clock

slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", "lowercase letters, digits and dashes, at most 63")
tool_validator = RegexValidator(r"^[A-Za-z0-9_.:/-]{1,128}$", "tool names are 1-128 of letters, digits, _ . : / -")


class GateState(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    KILLED = "killed", "Killed"


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"


# The fallback ladder (issue 15): what the agent may do at each level, most capable first. An agent
# steps down it (degrade) instead of stopping outright, and back up when the trouble is over.
DEFAULT_LEVELS = [
    {"name": "full", "description": "Everything: the model, every allowed tool"},
    {"name": "restricted", "description": "The model with read-only tools; nothing that writes or spends"},
    {"name": "retrieval", "description": "Answers from retrieved documents only; no tools"},
    {"name": "keyword", "description": "Keyword search results, no generated text"},
    {"name": "static", "description": "The fallback message only"},
]
level_name_validator = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,39}$", "level names are 1-40 of a-z, 0-9, _ and -")


def default_levels() -> list[dict[str, str]]:
    return [dict(level) for level in DEFAULT_LEVELS]


def levels_validate(levels: object) -> None:
    """A ladder is a non-empty list of ``{"name", "description"}`` with distinct, well-formed names."""
    if not isinstance(levels, list) or not levels:
        raise ValidationError({"fallback_levels": "a non-empty list of levels"})
    names = []
    for level in levels:
        if not isinstance(level, dict) or set(level) - {"name", "description"} or "name" not in level:
            raise ValidationError({"fallback_levels": 'each level is {"name": ..., "description": ...}'})
        name, description = level["name"], level.get("description", "")
        if not isinstance(name, str) or not isinstance(description, str) or len(description) > 500:
            raise ValidationError({"fallback_levels": "names and descriptions are text (descriptions <= 500)"})
        try:
            level_name_validator(name)
        except ValidationError:
            raise ValidationError({"fallback_levels": f"bad level name {name!r}: 1-40 of a-z, 0-9, _ and -"}) from None
        names.append(name)
    if len(set(names)) != len(names):
        raise ValidationError({"fallback_levels": "level names are listed more than once"})


class Agent(models.Model):
    """A registered agent and its gate: the state the SDK checks before every step."""

    slug = models.SlugField(max_length=63, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=200, blank=True, help_text="Owning team or person")
    environment = models.CharField(max_length=20, choices=Environment.choices, default=Environment.PRODUCTION)
    allowed_tools = ArrayField(models.CharField(max_length=128, validators=[tool_validator]), default=list, blank=True)
    high_risk_tools = ArrayField(
        models.CharField(max_length=128, validators=[tool_validator]), default=list, blank=True
    )
    model_version = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=200, blank=True)
    fallback_message = models.TextField(
        blank=True,
        default="This assistant is temporarily unavailable. A person will follow up with you shortly.",
        help_text="Static answer the caller serves while the agent is stopped",
    )

    # --- the gate -------------------------------------------------------------
    state = models.CharField(max_length=10, choices=GateState.choices, default=GateState.ACTIVE)
    state_reason = models.TextField(blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    state_changed_by = models.CharField(max_length=200, blank=True)
    disabled_tools = ArrayField(models.CharField(max_length=128, validators=[tool_validator]), default=list, blank=True)
    # Budget caps, in USD per session (run) and per UTC day; null means no cap.
    session_cost_cap = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    daily_cost_cap = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    session_token_cap = models.PositiveIntegerField(null=True, blank=True)
    session_step_cap = models.PositiveIntegerField(null=True, blank=True)
    budget_frozen = models.BooleanField(default=False, help_text="New runs refused; running ones drain")
    is_drill = models.BooleanField(
        default=False, help_text="Registered for a gameday: its alerts, incidents and notifications say DRILL"
    )
    # When the freeze began: runs the SDK started before it drain under the caps they started with.
    budget_frozen_at = models.DateTimeField(null=True, blank=True)
    gate_version = models.PositiveBigIntegerField(default=1)
    # Issue 15: the fallback ladder and the level the agent runs at, the pinned (rolled back)
    # versions, and blocked sessions, users and tenants, each with an expiry (see agents/containment.py).
    fallback_levels = models.JSONField(default=default_levels, blank=True, validators=[levels_validate])
    level = models.CharField(max_length=40, default="full", blank=True)
    pinned = models.JSONField(null=True, blank=True)
    blocks = models.JSONField(default=list, blank=True)

    canary_webhook_url = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        unknown = set(self.high_risk_tools) - set(self.allowed_tools)
        if self.allowed_tools and unknown:
            raise ValidationError({"high_risk_tools": f"not in allowed tools: {', '.join(sorted(unknown))}"})
        if len(set(self.allowed_tools)) != len(self.allowed_tools):
            raise ValidationError({"allowed_tools": "tools are listed more than once"})
        if isinstance(self.fallback_levels, list) and self.level and self.level not in self.level_names:
            raise ValidationError({"fallback_levels": f"the current level {self.level!r} must stay on the ladder"})

    @property
    def level_names(self) -> list[str]:
        return [lv["name"] for lv in self.fallback_levels if isinstance(lv, dict) and "name" in lv]

    @property
    def is_stopped(self) -> bool:
        return self.state != GateState.ACTIVE


class FleetGate(models.Model):
    """The fleet-wide switches, one row (pk=1): fleet stop and change freeze."""

    stopped = models.BooleanField(default=False)
    stopped_reason = models.TextField(blank=True)
    change_freeze = models.BooleanField(default=False, help_text="Deploy lock that pipelines read")
    change_freeze_reason = models.TextField(blank=True)
    version = models.PositiveBigIntegerField(default=1)
    # Moves forward when PostgreSQL is found behind the gate copy (a restore): agents order
    # documents by (epoch, version), so the restored state still replaces what they hold.
    epoch = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="fleetgate_singleton")]

    def __str__(self) -> str:
        return "fleet gate"

    @classmethod
    def load(cls) -> "FleetGate":
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class AuditAction(models.TextChoices):
    REGISTER = "register", "Registered"
    KILL = "kill", "Killed"
    PAUSE = "pause", "Paused"
    RESUME = "resume", "Resumed"
    TOOL_DISABLE = "tool_disable", "Tool disabled"
    TOOL_ENABLE = "tool_enable", "Tool enabled"
    BUDGET_FREEZE = "budget_freeze", "Budget frozen"
    BUDGET_UNFREEZE = "budget_unfreeze", "Budget unfrozen"
    BUDGET_CAPS = "budget_caps", "Budget caps changed"
    FLEET_STOP = "fleet_stop", "Fleet stopped"
    FLEET_RESUME = "fleet_resume", "Fleet resumed"
    CHANGE_FREEZE = "change_freeze", "Change freeze on"
    CHANGE_UNFREEZE = "change_unfreeze", "Change freeze off"
    REASON = "reason", "Reason added"
    SETTINGS = "settings", "Gate settings changed"
    EPOCH = "epoch", "Gate epoch moved"
    KEY_CREATE = "key_create", "API key made"
    KEY_REVOKE = "key_revoke", "API key revoked"
    CHANGE_RECORD = "change_record", "Change recorded"
    DEGRADE = "degrade", "Level changed"
    ROLLBACK = "rollback", "Rolled back (pinned)"
    UNPIN = "unpin", "Unpinned"
    BLOCK = "block", "Blocked"
    UNBLOCK = "unblock", "Unblocked"


class AuditEntry(models.Model):
    """One row per gate change: who, when, why, which incident. Never edited in place."""

    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries")
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200, help_text="user name, API key or detector that acted")
    reason = models.TextField(blank=True)
    tool = models.CharField(max_length=128, blank=True)
    # The incident is referenced by number, not by a foreign key: agents sits
    # below incidents and must not import it.
    incident_number = models.PositiveIntegerField(null=True, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    gate_version = models.PositiveBigIntegerField(null=True, blank=True)
    # A reason given later is its own row, by its own author, pointing at the change it explains.
    amends = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="amendments")
    created_at = models.DateTimeField(default=clock.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["agent", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.agent or 'fleet'} by {self.actor_label}"

    @property
    def detail(self) -> str:
        """What the change was, beyond its action, from the row's before and after: the level stepped to,
        the versions pinned, the session, user or tenant blocked (and until when), the tool switched."""
        before, after = self.before or {}, self.after or {}
        if self.action == AuditAction.DEGRADE:
            return f"{before.get('level', '?')} → {after.get('level', '?')}"
        if self.action in (AuditAction.ROLLBACK, AuditAction.UNPIN):
            pinned = after.get("pinned") if self.action == AuditAction.ROLLBACK else before.get("pinned")
            if not isinstance(pinned, dict):
                return ""
            versions = [f"{k} {pinned[f'{k}_version']}" for k in ("prompt", "model") if pinned.get(f"{k}_version")]
            return ("pinned to " if self.action == AuditAction.ROLLBACK else "was pinned to ") + (
                ", ".join(versions) or "no versions"
            )
        if self.action in (AuditAction.BLOCK, AuditAction.UNBLOCK):
            old, new = before.get("blocks") or [], after.get("blocks") or []
            changed = [b for b in new if b not in old] if self.action == AuditAction.BLOCK else []
            if self.action == AuditAction.UNBLOCK:
                kept = {(b.get("kind"), b.get("id")) for b in new}
                changed = [b for b in old if (b.get("kind"), b.get("id")) not in kept]
            parts = []
            for b in changed[:3]:
                part = f"{b.get('kind', '?')} {b.get('id', '?')}"
                if self.action == AuditAction.BLOCK and b.get("expires_at"):
                    part += f" until {str(b['expires_at'])[:16].replace('T', ' ')} UTC"
                parts.append(part)
            return ", ".join(parts)
        return self.tool


class ApiKeyScope(models.TextChoices):
    INGEST = "ingest", "Send spans"
    GATE = "gate", "Read the gate"
    API = "api", "Act as the user"
    INBOUND = "inbound", "Post alerts from an integration"


class ApiKey(models.Model):
    """A bearer key. Agent keys read their own gate and send spans; user keys act as the user.

    Only a SHA-256 of the key is stored; the key itself is shown once.
    """

    PREFIX = "fbk_"

    name = models.CharField(max_length=200, blank=True)
    lookup = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="firebreak_keys"
    )
    scopes = ArrayField(models.CharField(max_length=10, choices=ApiKeyScope.choices), default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)
    # An agent key with its own Redis user (read-only on its gate key and channel): see agents/keys/redis_users.py.
    redis_access = models.BooleanField(default=False)
    # An integration's key (Alertmanager, Grafana, Datadog, a webhook): it only posts inbound alerts,
    # and its name is recorded on the alerts it raises.
    integration = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(agent__isnull=False, user__isnull=True, integration="")
                | models.Q(agent__isnull=True, user__isnull=False, integration="")
                | (models.Q(agent__isnull=True, user__isnull=True) & ~models.Q(integration="")),
                name="apikey_one_owner",
            )
        ]

    def __str__(self) -> str:
        owner = self.agent or self.user or f"integration {self.integration}"
        return f"{self.PREFIX}{self.lookup}… ({owner})"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def generate(cls) -> tuple[str, str, str]:
        """Return (raw key, lookup, hash)."""
        lookup = secrets.token_hex(6)
        raw = f"{cls.PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
        return raw, lookup, cls.hash(raw)


class ChangeKind(models.TextChoices):
    PROMPT = "prompt", "Prompt"
    MODEL = "model", "Model"
    TOOLS = "tools", "Tools"
    CONFIG = "config", "Config"
    DEPLOY = "deploy", "Deploy"


class ChangeSource(models.TextChoices):
    API = "api", "API"
    INGEST = "ingest", "Seen by ingest"
    UI = "ui", "UI"


class ChangeEvent(models.Model):
    """One change to an agent (a new prompt, model, tool set, config or deploy): what the incident's
    "What changed" card lists. Recorded once per (agent, kind, version), by a pipeline over the API
    or by ingest the first time a trace carries a new prompt or model version.

    The first trace is stored as its trace id (agents sits below traces and must not import it);
    with the agent it makes the link ``/traces/<id>/?agent=<slug>``."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="change_events")
    kind = models.CharField(max_length=10, choices=ChangeKind.choices)
    version = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    actor_label = models.CharField(max_length=200)
    source = models.CharField(max_length=10, choices=ChangeSource.choices)
    first_trace_id = models.CharField(max_length=32, blank=True)
    during_freeze = models.BooleanField(default=False, help_text="Seen while the change freeze was on")
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "kind", "version"], name="changeevent_once_per_version")
        ]
        indexes = [models.Index(fields=["agent", "-created_at"], name="changeevent_agent_recent")]

    def __str__(self) -> str:
        return f"{self.agent} {self.kind} {self.version}"
