"""Runs the streaming detectors over one committed ingest batch."""

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Prefetch
from django.db.models.fields.json import KeyTransform

from incidents.detection import engine
from incidents.detection.base import Finding, registry
from incidents.detection.streaming._steps import STEP_ATTRIBUTES
from incidents.models import Alert
from traces.models import Step, Trace

logger = logging.getLogger(__name__)

# Steps as detectors read them: the large text and JSON columns stay in the database.
_STEP_DEFERRED = ("input", "output", "tool_arguments", "attributes")


def batch_traces(trace_pks: Iterable[int]) -> list[Trace]:
    """The batch's traces with their agents, each with ``batch_steps`` (ordered): two queries in all. The
    attributes the detectors read come along as annotations (``streaming._steps.step_attribute``)."""
    attributes = {name: KeyTransform(key, "attributes") for name, key in STEP_ATTRIBUTES.items()}
    steps = Step.objects.defer(*_STEP_DEFERRED).annotate(**attributes).order_by("started_at", "id")
    return list(
        Trace.objects.filter(pk__in=list(trace_pks))
        .select_related("agent")
        .prefetch_related(Prefetch("steps", queryset=steps, to_attr="batch_steps"))
        .order_by("started_at", "id")
    )


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
