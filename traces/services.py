"""Writes for traces: ingest of span batches from every format."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from agents.change_log import agent_change_observe, agent_changes_seen
from agents.models import Agent, ChangeKind
from core import clock
from core.actors import Actor
from core.redaction import scrubber
from traces.ingest.normalize import action_hash, span_scrub
from traces.ingest.payloads import payloads_split
from traces.ingest.spans import IngestError, Span
from traces.ingest.writer import SpanPayloads, write_spans
from traces.models import Step, Trace, TraceStatus
from traces.signals import spans_ingested, step_flagged

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int
    traces: int

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.received - self.stored,
            "traces": self.traces,
        }


def _resolve_agents(spans: list[Span], key_agent: Agent | None) -> dict[str, int]:
    """The owning agent of every span (``Span.agent``), as slug -> pk.

    With an agent's key the owner is always that agent: a span naming another agent (``agent``,
    ``firebreak.agent``) is refused, never written to that agent's trajectory. With a person's key
    each span names its agent (native ``agent``; OTLP ``firebreak.agent`` or ``service.name``).
    """
    if key_agent is not None:
        for i, s in enumerate(spans):
            if not s.agent:
                s.agent = key_agent.slug
            elif s.agent != key_agent.slug:
                raise IngestError(
                    f"spans[{i}].agent: this key belongs to agent {key_agent.slug!r} and cannot send spans "
                    f"for {s.agent[:63]!r}",
                    status=403,
                )
        return {key_agent.slug: key_agent.pk}
    slugs = {s.agent for s in spans}
    if "" in slugs:
        i = next(i for i, s in enumerate(spans) if not s.agent)
        raise IngestError(f"spans[{i}].agent: required when the key does not belong to an agent")
    found = dict(Agent.objects.filter(slug__in=slugs).values_list("slug", "pk"))
    missing = sorted(slugs - set(found))
    if missing:
        raise IngestError(f"unknown agent(s): {', '.join(m[:63] for m in missing[:5])}; register them first")
    return found


def trace_ingest(*, spans: list[Span], key_agent: Agent | None = None, backfill: bool = False) -> IngestResult:
    """Store a validated batch in one transaction; idempotent on (agent, trace id, span id).

    A trajectory is (agent, trace id): spans with a trace id another agent also uses make this agent's
    own trajectory of it and never change the other's steps, totals or status.

    Every string of every span is scrubbed (``span_scrub``) and action hashes computed before anything is
    written. A value over ``traces.ingest.payloads.APART_BYTES`` (input, output, tool arguments, one
    attribute) is stored compressed in ``StepPayload``, in the same transaction, and the step row keeps a
    preview (``payloads_split``); ``spans`` themselves are not changed by that. Raises IngestError
    (nothing written) when a span names an agent the key may not write for, or an unknown agent. After commit,
    ``traces.signals.spans_ingested`` is sent with the traces that gained steps, and the steps of those the
    batch created (so detection need not read them back). ``backfill`` marks
    an import of past traces (the demo history): the signal says so, and live detection skips it.
    """
    if len(spans) > settings.FIREBREAK_INGEST_MAX_SPANS:
        raise IngestError(f"{len(spans)} spans, at most {settings.FIREBREAK_INGEST_MAX_SPANS} per batch", 413)
    using = scrubber()  # the settings' scrubber, looked up once for the batch
    for s in spans:
        span_scrub(s, using=using)
        if s.tool_name:
            s.action_hash = action_hash(s.tool_name, s.tool_arguments)
    agent_ids = _resolve_agents(spans, key_agent)
    rows: list[Span] = []
    apart: SpanPayloads = {}
    for s in spans:
        row, payloads = payloads_split(s)
        rows.append(row)
        if payloads:
            apart[(s.agent, s.trace_id, s.span_id)] = payloads
    with transaction.atomic():
        result = write_spans(rows, agent_ids, apart)
        if result.stored:
            trace_pks = sorted(result.trace_ids.values())
            agents = sorted(set(agent_ids.values()))
            oldest = min(s.start for s in spans)
            transaction.on_commit(
                lambda: spans_ingested.send(
                    sender=trace_ingest,
                    trace_pks=trace_pks,
                    agent_ids=agents,
                    stored=result.stored,
                    backfill=backfill,
                    oldest=oldest,
                    created=result.created,
                )
            )
            if not backfill and not agent_changes_seen(_versions_carried(rows, agent_ids)):
                transaction.on_commit(lambda: trace_versions_observe(trace_pks=trace_pks))
    return IngestResult(received=len(spans), stored=result.stored, traces=len({(s.agent, s.trace_id) for s in spans}))


def _versions_carried(spans: list[Span], agent_ids: dict[str, int]) -> set[tuple[int, str, str]]:
    """The (agent pk, kind, version) a batch's traces can carry: the spans' prompt and model versions, and an LLM
    span's model (a trace without a model version takes it). What its traces store is these, or what earlier
    batches carried (observed then)."""
    found: set[tuple[int, str, str]] = set()
    for s in spans:
        agent_id = agent_ids[s.agent]
        if s.model_version:
            found.add((agent_id, ChangeKind.MODEL, s.model_version))
        if s.prompt_version:
            found.add((agent_id, ChangeKind.PROMPT, s.prompt_version))
        if s.kind == "llm" and s.model:
            found.add((agent_id, ChangeKind.MODEL, s.model))
    return found


def trace_versions_observe(*, trace_pks: list[int]) -> int:
    """Record, in the agents' change log, every prompt or model version these traces carry that the
    agent had not shown before, with the earliest trace that carried it. Runs after the batch
    committed; a failure is logged, never an ingest error. Returns how many changes were recorded."""
    recorded = 0
    try:
        rows = (
            Trace.objects.filter(pk__in=trace_pks)
            .order_by("started_at", "pk")
            .values_list("agent_id", "trace_id", "model_version", "prompt_version")
        )
        seen: set[tuple[int, str, str]] = set()
        for agent_id, trace_id, model_version, prompt_version in rows:
            for kind, version in ((ChangeKind.MODEL, model_version), (ChangeKind.PROMPT, prompt_version)):
                if not version or (agent_id, kind, version) in seen:
                    continue
                seen.add((agent_id, kind, version))
                if agent_change_observe(agent_id=agent_id, kind=kind, version=version, trace_id=trace_id):
                    recorded += 1
    except Exception:
        logger.exception("recording the versions seen by ingest failed")
    return recorded


# --- flags and golden trajectories ---------------------------------------------------------------------


FLAG_NOTE_MAX = 500


def _flag_note_clean(note: str | None) -> str:
    # One sentence on one line: newlines and runs of spaces collapse to one space.
    text = " ".join((note or "").split())
    if not text:
        raise ValidationError({"note": ["Say in one sentence why this is the step where the run went off the rails."]})
    if len(text) > FLAG_NOTE_MAX:
        raise ValidationError({"note": [f"At most {FLAG_NOTE_MAX} characters (this note has {len(text)})."]})
    return text


def trace_flag(*, trace: Trace, span_id: str, note: str, actor: Actor) -> Trace:
    """Flag ``span_id`` as the step where ``trace`` went off the rails, with a one-sentence note.

    Replaces an earlier flag on the trace. Raises ValidationError (nothing written) when the step is
    not in this trace or the note is empty or longer than FLAG_NOTE_MAX characters (whitespace is
    collapsed first). After commit, ``traces.signals.step_flagged`` is sent with the trace, the span
    id, the note and the actor's label. Returns the updated trace.
    """
    text = _flag_note_clean(note)
    span_id = (span_id or "").strip()
    if not span_id or not Step.objects.filter(trace_id=trace.pk, span_id=span_id).exists():
        raise ValidationError({"span_id": [f"This trace has no step with span id {span_id[:32]!r}."]})
    label = actor.label
    with transaction.atomic():
        locked = Trace.objects.select_for_update().get(pk=trace.pk)
        locked.flagged_span_id = span_id
        locked.flag_note = text
        locked.flagged_by = label[:200]
        locked.flagged_at = clock.now()
        locked.save(update_fields=["flagged_span_id", "flag_note", "flagged_by", "flagged_at", "updated_at"])
        transaction.on_commit(
            lambda: step_flagged.send(sender=trace_flag, trace=locked, span_id=span_id, note=text, actor_label=label)
        )
    _copy_flag(locked, trace)
    return trace


def trace_unflag(*, trace: Trace, actor: Actor) -> Trace:
    """Remove the flag from ``trace`` (nothing happens when it has none). Returns the updated trace."""
    with transaction.atomic():
        locked = Trace.objects.select_for_update().get(pk=trace.pk)
        if locked.flagged_span_id or locked.flag_note:
            locked.flagged_span_id = ""
            locked.flag_note = ""
            locked.flagged_by = ""
            locked.flagged_at = None
            locked.save(update_fields=["flagged_span_id", "flag_note", "flagged_by", "flagged_at", "updated_at"])
    _copy_flag(locked, trace)
    return trace


def _copy_flag(src: Trace, dst: Trace) -> None:
    for name in ("flagged_span_id", "flag_note", "flagged_by", "flagged_at", "updated_at"):
        setattr(dst, name, getattr(src, name))


def trace_golden_set(*, trace: Trace, actor: Actor) -> Trace:
    """Make ``trace`` the golden trajectory of its agent and input class; the previous golden one stops being.

    Raises ValidationError (nothing written) when the trace is still running or has no input class.
    Concurrent calls for the same agent and class are serialised, so there is at most one golden trace
    per (agent, input class). Returns the updated trace.
    """
    if trace.status == TraceStatus.RUNNING:
        raise ValidationError({"trace": ["A running trace cannot be golden: wait until it has finished."]})
    if not trace.input_class:
        raise ValidationError({"trace": ["This trace has no input class, so it cannot be the golden run of one."]})
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"golden:{trace.agent_id}:{trace.input_class}"])
        (
            Trace.objects.filter(agent_id=trace.agent_id, input_class=trace.input_class, is_golden=True)
            .exclude(pk=trace.pk)
            .update(is_golden=False, updated_at=clock.now())
        )
        Trace.objects.filter(pk=trace.pk).update(is_golden=True, updated_at=clock.now())
    trace.is_golden = True
    return trace
