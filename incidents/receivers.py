"""Receivers and hooks incidents connects in ready(): they only hand off to services."""

import logging
from collections.abc import Collection, Mapping
from datetime import datetime

from django.core.exceptions import PermissionDenied

from agents.models import Agent, AuditAction, AuditEntry
from core.actors import Actor
from core.roles import ADMIN
from incidents.detection.backlog import detection_backlog_record
from incidents.detection.runner import batch_steps_stash
from incidents.detection.scheduled.rollup import rollups_forget
from incidents.detection.tasks import detect_batch_task
from incidents.models import OPEN_STATUSES, ActionItem, Incident, PostMortem, Severity
from incidents.services import incident_auto_contain, timeline_flag_record, timeline_gate_record
from traces.ingest.spans import Span
from traces.models import Trace

logger = logging.getLogger(__name__)

# A fleet stop refuses agents at the fleet gate without changing their own state: it does not count.
STOPPING_ACTIONS = {AuditAction.KILL, AuditAction.PAUSE}


def on_gate_changed(
    sender: object,
    *,
    agent: Agent,
    action: str,
    audit_entry: AuditEntry | None,
    actor_label: str,
    reason: str,
    incident_number: int | None,
    **kwargs: object,
) -> None:
    timeline_gate_record(
        agent=agent,
        action=action,
        action_label=AuditAction(action).label,
        actor=Actor(label=actor_label),
        reason=reason,
        incident_number=incident_number,
        detail=audit_entry.detail if audit_entry is not None else "",
    )
    if action in STOPPING_ACTIONS:
        incident_auto_contain(agent=agent)


def on_spans_ingested(
    sender: object,
    *,
    trace_pks: Collection[int],
    backfill: bool = False,
    oldest: datetime | None = None,
    created: Mapping[int, list[Span]] | None = None,
    **kwargs: object,
) -> None:
    """A batch committed: queue the streaming detectors for its traces, with the steps of the traces it created
    left in Redis (the worker then reads only the others' back); with the broker down, remember the
    batch in PostgreSQL (drained when the broker is back), so its detection is late but never lost. Spans of
    hours already rolled up for the scheduled detectors have those hours rolled again when next read.

    A backfill (past traces imported after the fact) is not detected: its alerts would be raised now, and
    their rules pause agents and declare incidents for what was handled months ago."""
    if oldest is not None:
        rollups_forget(since=oldest)
    if not trace_pks or backfill:
        return
    try:
        detect_batch_task.delay(list(trace_pks), batch_steps_stash(created or {}))
    except Exception:
        logger.warning("broker unreachable: detection of %d traces recorded to be queued later", len(trace_pks))
        detection_backlog_record(trace_pks=trace_pks)


def on_step_flagged(
    sender: object, *, trace: Trace, span_id: str, note: str, actor_label: str, **kwargs: object
) -> None:
    timeline_flag_record(trace=trace, span_id=span_id, note=note, actor=Actor(label=actor_label))


def resume_needs_admin_for_open_sev1(agent: Agent, actor: Actor) -> None:
    """Resuming an agent linked to an open SEV1 needs an admin."""
    open_sev1 = Incident.objects.filter(agents=agent, severity=Severity.SEV1, status__in=OPEN_STATUSES)
    if not actor.can(ADMIN) and open_sev1.exists():
        refs = ", ".join(i.ref for i in open_sev1[:3])
        raise PermissionDenied(f"{agent.slug} is linked to open SEV1 {refs}: only an admin can resume it")


def postmortem_published_for_sev1_sev2(incident: Incident) -> str | None:
    """Closure check: SEV1 and SEV2 incidents need a published post-mortem."""
    if incident.severity not in (Severity.SEV1, Severity.SEV2):
        return None
    status = PostMortem.objects.filter(incident=incident).values_list("status", flat=True).first()
    if status == PostMortem.Status.PUBLISHED:
        return None
    state = "none yet" if status is None else f"it is {PostMortem.Status(status).label.lower()}"
    return f"Needs a published post-mortem (SEV1/SEV2) — {state}"


def sev1_action_items_done(incident: Incident) -> str | None:
    """Closure check: a SEV1 does not close while its post-mortem has open action items."""
    if incident.severity != Severity.SEV1:
        return None
    n = ActionItem.objects.filter(
        postmortem__incident=incident, status__in=[ActionItem.Status.OPEN, ActionItem.Status.IN_PROGRESS]
    ).count()
    if not n:
        return None
    return f"A SEV1 closes only when its action items are done or dropped — {n} still open"
