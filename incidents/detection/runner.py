"""Runs the streaming detectors over one committed ingest batch."""

import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import redis
from django.db.models.fields.json import KeyTransform

from core.redis import get_redis_once
from incidents.detection import engine
from incidents.detection.base import Finding, registry
from incidents.detection.streaming._steps import STEP_ATTRIBUTES
from incidents.detection.streaming._text import output_instructs, output_refuses
from incidents.models import Alert
from traces.ingest.spans import Span
from traces.models import Step, Trace

logger = logging.getLogger(__name__)

# The step columns the streaming detectors read; the large text and JSON columns stay in the database.
_STEP_FIELDS = (
    "id", "trace_id", "span_id", "parent_span_id", "kind", "name", "agent_name", "tool_name", "action_hash",
    "model", "tokens_in", "tokens_out", "cost", "finish_reason", "status", "error_message", "started_at", "ended_at",
)  # fmt: skip


# What ingest leaves for the detection task of each step of a trace the batch created (``batch_steps_pack``):
# ``_STEP_FIELDS`` but the step's id, then the annotated attributes. The worker then reads none of them back.
# ``refuses`` / ``instructs``: what ``streaming._text`` finds in the step's output (the output itself is not sent).
_PACKED = (*(f for f in _STEP_FIELDS if f != "id"), *STEP_ATTRIBUTES, "refuses", "instructs")
# A batch whose steps' text (names, error messages) passes this is not packed: the worker reads it instead.
PACK_MAX_CHARS = 1_000_000
# Packed steps wait in Redis this long for their task (``batch_steps_stash``); a worker further behind reads them.
STASH_SECONDS = 120
_STASH_KEY = "firebreak:detect:steps:{}"


class BatchStep:
    """A step as the streaming detectors read it: the columns of ``_STEP_FIELDS`` and the annotated attributes
    (``streaming._steps.STEP_ATTRIBUTES``) as plain attributes. Not a model instance: building one per step was
    half of the worker's CPU per span. ``attributes`` (rarely wanted) is read from the database on first use."""

    trace_id: int
    span_id: str
    started_at: datetime

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    @property
    def attributes(self) -> dict[str, Any]:
        found = (
            Step.objects.filter(trace_id=self.trace_id, span_id=self.span_id, started_at=self.started_at)
            .values_list("attributes", flat=True)
            .first()
        )
        return found or {}


def batch_steps_pack(created: Mapping[int, list[Span]]) -> list[list[Any]] | None:
    """The steps of the traces an ingest batch created (``trace_ingest``'s, as written), as the detection task
    gets them (``batch_steps_stash``): one JSON list a step, in ``_PACKED`` order. Ingest has them in hand;
    reading them back was most of the worker's CPU a span, and matching outputs in PostgreSQL most of its share.
    None when there are none, or their text would be large (``PACK_MAX_CHARS``): the worker reads them instead.
    Times are datetimes here and RFC 3339 text once encoded (``batch_steps_stash``)."""
    rows: list[list[Any]] = []
    chars = 0
    for trace_pk, spans in created.items():
        for s in spans:
            chars += len(s.name) + len(s.error_message) + len(s.tool_name) + len(s.agent_name)
            attributes = s.attributes
            rows.append([
                trace_pk, s.span_id, s.parent_span_id, s.kind, s.name, s.agent_name, s.tool_name, s.action_hash,
                s.model, s.tokens_in, s.tokens_out, str(s.cost), s.finish_reason, s.status, s.error_message,
                s.start, s.end,
                *(attributes.get(key) for key in STEP_ATTRIBUTES.values()),
                s.kind == "llm" and output_refuses(s.output),
                s.kind in ("tool", "retrieval") and output_instructs(s.output),
            ])  # fmt: skip
    return rows if rows and chars <= PACK_MAX_CHARS else None


def batch_steps_stash(created: Mapping[int, list[Span]]) -> str | None:
    """Pack the steps of the traces an ingest batch created and leave them in Redis for ``STASH_SECONDS``; the
    key goes in the detection task's message. Not the steps themselves: a message of 100+ KB cost the worker's
    Celery (copies, base64, the unacknowledged copy) more than detecting the batch. None when nothing is packed
    or Redis refused: the worker reads the steps from PostgreSQL."""
    packed = batch_steps_pack(created)
    if packed is None:
        return None
    key = _STASH_KEY.format(uuid.uuid4().hex)
    try:
        get_redis_once().set(key, orjson.dumps(packed), ex=STASH_SECONDS)
    except redis.RedisError:
        logger.warning("Redis refused a detection batch's steps: the worker reads them from PostgreSQL")
        return None
    return key


def batch_steps_take(key: str) -> list[list[Any]] | None:
    """The packed steps left under ``key`` (``batch_steps_stash``); None when they are gone (expired, Redis
    restarted or down): the caller reads the steps from PostgreSQL."""
    try:
        data = get_redis_once().get(key)
    except redis.RedisError:
        return None
    return orjson.loads(data) if data else None


def _unpacked(row: list[Any]) -> BatchStep:
    values = dict(zip(_PACKED, row, strict=True))
    values["cost"] = Decimal(values["cost"])
    values["started_at"] = datetime.fromisoformat(values["started_at"])
    if values["ended_at"] is not None:
        values["ended_at"] = datetime.fromisoformat(values["ended_at"])
    return BatchStep(values)


def batch_traces(trace_pks: Iterable[int], packed: list[list[Any]] | None = None) -> list[Trace]:
    """The batch's traces with their agents, each with ``batch_steps`` (ordered ``BatchStep``s): two queries in
    all. The attributes the detectors read come along as annotations (``streaming._steps.step_attribute``).

    ``packed`` (``batch_steps_pack``): the steps of the traces the batch created, as ingest left them; only the
    other traces' steps are read."""
    pks = list(trace_pks)
    # The root's input and output (large text) are no detector's business.
    found = Trace.objects.filter(pk__in=pks).select_related("agent").defer("root_input", "root_output")
    traces = list(found.order_by("started_at", "id"))
    steps: defaultdict[int, list[BatchStep]] = defaultdict(list)
    for packed_row in packed or ():
        step = _unpacked(packed_row)
        steps[step.trace_id].append(step)
    for shipped in steps.values():
        shipped.sort(key=lambda s: s.started_at)  # stable: the batch's order (the ids') among equal starts
    read = {pk for pk in pks if pk not in steps}
    if read:
        attributes = {name: KeyTransform(key, "attributes") for name, key in STEP_ATTRIBUTES.items()}
        rows = Step.objects.filter(trace_id__in=read).order_by("started_at", "id")
        for row in rows.values(*_STEP_FIELDS, **attributes):
            steps[row["trace_id"]].append(BatchStep(row))
    for trace in traces:
        trace.batch_steps = steps.get(trace.pk, [])  # type: ignore[attr-defined]
        trace.batch_packed = trace.pk not in read  # type: ignore[attr-defined]
    return traces


def detect_batch_stashed(*, trace_pks: list[int], steps_key: str | None) -> list[Alert]:
    """``detect_batch`` with the steps ingest stashed under ``steps_key`` (when still there), which are then
    dropped; a batch that fails keeps them for its retry until they expire."""
    packed = batch_steps_take(steps_key) if steps_key else None
    alerts = detect_batch(trace_pks=trace_pks, packed=packed)
    if packed is not None and steps_key:
        with contextlib.suppress(redis.RedisError):  # else they expire
            get_redis_once().delete(steps_key)
    return alerts


def detect_batch(*, trace_pks: Iterable[int], packed: list[list[Any]] | None = None) -> list[Alert]:
    """Run every enabled streaming detector on the batch's traces, agent by agent, and act on the findings.

    ``packed``: the steps of the traces the batch created, as ingest sent them (``batch_steps_pack``).
    Returns the alerts raised or bumped. One detector failing is logged and does not stop the others.
    """
    traces = batch_traces(trace_pks, packed)
    if not traces:
        return []
    by_agent: defaultdict[int, list[Trace]] = defaultdict(list)
    for trace in traces:
        by_agent[trace.agent_id].append(trace)
    findings: list[Finding] = []
    settings_of = engine.detector_settings_batch(agent_traces[0].agent for agent_traces in by_agent.values())
    for name, spec in sorted(registry.items()):
        if spec.kind != "streaming":
            continue
        for agent_traces in by_agent.values():
            enabled, thresholds, _ = settings_of(name, agent_traces[0].agent)
            if not enabled:
                continue
            try:
                findings.extend(spec.run(traces=agent_traces, settings=thresholds))
            except Exception:
                logger.exception("streaming detector %s failed on agent %s", name, agent_traces[0].agent_id)
    return engine.findings_handle(findings)
