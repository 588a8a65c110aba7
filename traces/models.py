from django.contrib.postgres.indexes import BrinIndex, GinIndex, OpClass
from django.db import models
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils.http import urlencode

from agents.models import Agent


class TraceStatus(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    ERROR = "error", "Error"
    KILLED = "killed", "Killed"


class StepKind(models.TextChoices):
    LLM = "llm", "LLM call"
    TOOL = "tool", "Tool call"
    RETRIEVAL = "retrieval", "Retrieval"
    DECISION = "decision", "Decision"
    AGENT = "agent", "Agent"
    OTHER = "other", "Other"


class StepStatus(models.TextChoices):
    UNSET = "unset", "Unset"
    OK = "ok", "OK"
    ERROR = "error", "Error"


class Trace(models.Model):
    """One trajectory: a single run of an agent, assembled from its spans.

    A trajectory is identified by (agent, trace id): spans that share a trace id but come from
    different agents (a multi-agent run, or a key sending someone else's trace id) are separate,
    linked trajectories, so one agent's spans never change another agent's steps, totals or status.
    Totals are maintained by ingest from the spans actually stored, so a span sent twice is counted once.
    """

    # Indexes are declared in Meta, without the LIKE-pattern copies Django adds for
    # unique/db_index CharFields: every index here is paid for on the ingest hot path.
    trace_id = models.CharField(max_length=32)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="traces", db_index=False)
    session_id = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=200, blank=True)
    input_class = models.CharField(max_length=200, blank=True)
    root_input = models.TextField(blank=True)
    root_output = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=TraceStatus.choices, default=TraceStatus.RUNNING)
    model_version = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    tokens_in = models.BigIntegerField(default=0)
    tokens_out = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    step_count = models.PositiveIntegerField(default=0)
    tool_call_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    is_golden = models.BooleanField(default=False)
    flagged_span_id = models.CharField(max_length=16, blank=True)
    flag_note = models.CharField(max_length=500, blank=True)
    flagged_by = models.CharField(max_length=200, blank=True)
    flagged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        # Unique per (agent, trace id). trace_id leads the index so it also serves lookups by trace id
        # alone (the viewer's URL, linked trajectories) without a second index on the ingest hot path.
        constraints = [models.UniqueConstraint(fields=["trace_id", "agent"], name="trace_unique_agent_trace_id")]
        indexes = [
            models.Index(fields=["session_id"], name="trace_session_idx"),
            models.Index(fields=["user_id"], name="trace_user_idx"),
            models.Index(fields=["agent", "-started_at"]),
            models.Index(fields=["status", "-started_at"]),
            models.Index(fields=["-started_at", "-id"]),
            models.Index(fields=["input_class"], condition=models.Q(is_golden=True), name="trace_golden_idx"),
            models.Index(
                fields=["-started_at", "-id"], condition=~models.Q(flagged_span_id=""), name="trace_flagged_idx"
            ),
        ]

    def __str__(self):
        return self.trace_id

    def get_absolute_url(self) -> str:
        """The trajectory viewer for this agent's trajectory of the trace id (``?agent=`` picks it)."""
        return f"{reverse('traces:trace-detail', args=[self.trace_id])}?{urlencode({'agent': self.agent.slug})}"

    @property
    def agent_query(self) -> str:
        """``agent=<slug>``: the query that picks this trajectory where the URL only names the trace id."""
        return urlencode({"agent": self.agent.slug})

    @property
    def duration_ms(self) -> int | None:
        if not self.ended_at:
            return None
        return int((self.ended_at - self.started_at).total_seconds() * 1000)


# Separates the fields of StepSearchText, so that no match spans two of them (queries have it removed).
SEARCH_FIELD_SEPARATOR = "\x1f"


def step_arguments_text() -> Cast:
    """A step's tool arguments as text: what the blast radius searches, and its trigram index holds."""
    return Cast("tool_arguments", models.TextField())


class _TextOrEmpty(models.Func):
    template = "COALESCE(%(expressions)s, '')"
    output_field = models.TextField()


class StepSearchText(models.Func):
    """What the in-trace search reads: a step's name, tool name, arguments, output and error in one text.

    One ILIKE over it instead of one per field. Not indexed: a trigram index over every step's output cost
    PostgreSQL about 8 times its CPU per ingested span (README, "PostgreSQL"); the search reads one trace's steps.
    """

    template = "(%(expressions)s)"
    arg_joiner = " || E'\\x1f' || "
    output_field = models.TextField()

    def __init__(self) -> None:
        super().__init__(
            models.F("name"),
            models.F("tool_name"),
            _TextOrEmpty(step_arguments_text()),
            models.F("output"),
            models.F("error_message"),
        )


class Step(models.Model):
    """One span of a trajectory. Content fields hold untrusted model and tool output.

    The table is partitioned by day on ``started_at`` (``traces.retention``); its primary key in the database
    is (id, started_at), ``id`` alone unique by its sequence. Reads of one trace's steps bound ``started_at``
    by the trace's start (no step starts before its trace), which leaves out the older days' partitions.
    """

    # No index of its own: (trace, span_id) and (trace, started_at, id) lead with it.
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="steps", db_index=False)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=10, choices=StepKind.choices, default=StepKind.OTHER)
    name = models.CharField(max_length=500)
    agent_name = models.CharField(max_length=200, blank=True)
    tool_name = models.CharField(max_length=200, blank=True)
    tool_arguments = models.JSONField(null=True, blank=True)
    action_hash = models.CharField(max_length=16, blank=True, help_text="tool + canonical arguments")
    input = models.TextField(blank=True)
    output = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    tokens_in = models.IntegerField(default=0)
    tokens_out = models.IntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    finish_reason = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=5, choices=StepStatus.choices, default=StepStatus.UNSET)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        # Partitioned by day on started_at (migration 0009, traces.retention): every unique key carries it. A span
        # sent again (the same trace, span id and start) is stored once.
        constraints = [models.UniqueConstraint(fields=["trace", "span_id", "started_at"], name="step_unique_span")]
        indexes = [
            # a trace's steps in order, carrying what the viewer's skeleton reads of every step (index-only)
            models.Index(
                fields=["trace", "started_at", "id"],
                include=["span_id", "parent_span_id", "action_hash"],
                name="step_trace_order_idx",
            ),
            # tool first, then the trace, carrying the start: "which traces called X" (in a window) is read from
            # the index alone, without visiting the steps
            models.Index(
                fields=["tool_name", "trace"],
                include=["started_at"],
                condition=~models.Q(tool_name=""),
                name="step_tool_trace_idx",
            ),
            models.Index(fields=["action_hash"], condition=~models.Q(action_hash=""), name="step_action_idx"),
            BrinIndex(fields=["started_at"], name="step_started_brin"),
            # pg_trgm: the blast radius's argument substring and regex search, and the in-trace search.
            GinIndex(OpClass(step_arguments_text(), name="gin_trgm_ops"), name="step_args_trgm"),
        ]

    def __str__(self):
        return f"{self.span_id} {self.name}"

    @property
    def duration_ms(self) -> int | None:
        if not self.ended_at:
            return None
        return int((self.ended_at - self.started_at).total_seconds() * 1000)


class StepPayload(models.Model):
    """One large value of a step, kept apart from the step row, zlib-compressed.

    Ingest moves any value over ``traces.ingest.payloads.APART_BYTES`` (the input, the output, the tool
    arguments, or one attribute) here; the step row keeps a short preview and, in its attributes,
    ``firebreak.apart``: ``{field: original size in bytes}``. ``field`` is ``input``, ``output``,
    ``tool_arguments`` or ``attributes.<key>``.

    Keyed by (trace, span id, field) with no foreign key to Step: the steps table is partitioned by time,
    and a constraint on it would tie every partition to this table. Payload rows go with their trace:
    deleting the trace deletes them (the trace key cascades), and retention that drops a window of steps
    drops the payload rows of that window with them (``started_at`` is the step's own start time, so the
    same range or partition bound selects both). The trace key is ON DELETE CASCADE in the database
    (migration 0006), so a trace deleted with SQL takes its payloads too.
    """

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="payloads", db_index=False)
    span_id = models.CharField(max_length=16)
    field = models.TextField()
    started_at = models.DateTimeField(help_text="the step's start: retention drops payloads with their window")
    content_type = models.CharField(max_length=50, default="text/plain")
    size = models.BigIntegerField(help_text="bytes of the value, UTF-8, before compression")
    data = models.BinaryField(help_text="zlib-compressed UTF-8 text (JSON text for arguments and attributes)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trace", "span_id", "field"], name="step_payload_unique_field")]
        indexes = [BrinIndex(fields=["started_at"], name="step_payload_started_brin")]

    def __str__(self) -> str:
        return f"{self.span_id} {self.field} ({self.size} bytes)"
