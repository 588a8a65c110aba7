"""Runs the streaming detectors over one committed ingest batch."""

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models.fields.json import KeyTransform

from incidents.detection import engine
from incidents.detection.base import Finding, registry
from incidents.detection.streaming._steps import STEP_ATTRIBUTES
from incidents.models import Alert
from traces.models import Step, Trace

logger = logging.getLogger(__name__)

# The step columns the streaming detectors read; the large text and JSON columns stay in the database.
_STEP_FIELDS = (
    "id", "trace_id", "span_id", "parent_span_id", "kind", "name", "agent_name", "tool_name", "action_hash",
    "model", "tokens_in", "tokens_out", "cost", "finish_reason", "status", "error_message", "started_at", "ended_at",
)  # fmt: skip


class BatchStep:
    """A step as the streaming detectors read it: the columns of ``_STEP_FIELDS`` and the annotated attributes
    (``streaming._steps.STEP_ATTRIBUTES``) as plain attributes. Not a model instance: building one per step was
    half of the worker's CPU per span. ``attributes`` (rarely wanted) is read from the database on first use."""

    trace_id: int

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
        self.pk = values["id"]

    @property
    def attributes(self) -> dict[str, Any]:
        found = Step.objects.filter(pk=self.pk, trace_id=self.trace_id).values_list("attributes", flat=True).first()
        return found or {}


def batch_traces(trace_pks: Iterable[int]) -> list[Trace]:
    """The batch's traces with their agents, each with ``batch_steps`` (ordered ``BatchStep``s): two queries in
    all. The attributes the detectors read come along as annotations (``streaming._steps.step_attribute``)."""
    pks = list(trace_pks)
    attributes = {name: KeyTransform(key, "attributes") for name, key in STEP_ATTRIBUTES.items()}
    traces = list(Trace.objects.filter(pk__in=pks).select_related("agent").order_by("started_at", "id"))
    steps: defaultdict[int, list[BatchStep]] = defaultdict(list)
    rows = Step.objects.filter(trace_id__in=pks).order_by("started_at", "id").values(*_STEP_FIELDS, **attributes)
    for row in rows:
        steps[row["trace_id"]].append(BatchStep(row))
    for trace in traces:
        trace.batch_steps = steps.get(trace.pk, [])  # type: ignore[attr-defined]
    return traces


def detect_batch(*, trace_pks: Iterable[int]) -> list[Alert]:
    """Run every enabled streaming detector on the batch's traces, agent by agent, and act on the findings.

    Returns the alerts raised or bumped. One detector failing is logged and does not stop the others.
    """
    traces = batch_traces(trace_pks)
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
