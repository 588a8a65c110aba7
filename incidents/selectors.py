"""Reads for incidents: lists, one incident with its timeline and runbook, taxonomy, chart data."""

from datetime import datetime, timedelta
from typing import TypedDict

from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404
from django.template.defaultfilters import pluralize
from django.utils import timezone

from agents.models import Agent, ChangeEvent, GateState
from agents.selectors import change_list_before
from core.pages import keyset_page
from incidents import hooks
from incidents.models import (
    OPEN_STATUSES,
    SEVERITY_DEFINITIONS,
    ActionItem,
    Alert,
    FailureClass,
    Incident,
    IncidentStatus,
    PostMortem,
    RunbookPhase,
    RunbookStep,
    Severity,
    TimelineEntry,
)
from traces.models import Trace

# Where no post-mortem exists yet, its deadline counts from the declaration
# (SEV1: "post-mortem within 48 hours"). Other severities have no deadline.
POSTMORTEM_DUE_AFTER: dict[str, timedelta] = {Severity.SEV1: timedelta(hours=48)}


class StatusStep(TypedDict):
    status: str
    label: str
    at: datetime | None  # None: not reached yet
    current: bool


class SeverityInfo(TypedDict):
    value: str
    label: str
    definition: str


class FailureClassRow(TypedDict):
    name: str
    counts: list[int]  # per severity, in ``severities`` order
    total: int


class FailureClassCounts(TypedDict):
    classes: list[str]  # names in taxonomy order
    severities: list[str]
    counts: dict[str, list[int]]  # severity -> count per class
    rows: list[FailureClassRow]
    total: int


class RunbookGroup(TypedDict):
    phase: str
    label: str
    steps: list[RunbookStep]
    done: int


def postmortem_overdue(*, incident: Incident, now: datetime | None = None) -> bool:
    """True when the post-mortem is past due and unpublished, or missing past the severity's deadline."""
    now = now or timezone.now()
    try:
        postmortem = incident.postmortem
    except PostMortem.DoesNotExist:
        postmortem = None
    if postmortem is not None:
        return postmortem.is_overdue
    due_after = POSTMORTEM_DUE_AFTER.get(incident.severity)
    return bool(due_after and now > incident.declared_at + due_after)


def _with_overdue(incidents: list[Incident]) -> list[Incident]:
    now = timezone.now()
    for incident in incidents:
        # A display attribute the incident pages read, not a model field.
        incident.postmortem_overdue = postmortem_overdue(incident=incident, now=now)  # type: ignore[attr-defined]
    return incidents


def incident_list(*, status: str = "", open_only: bool = False, severity: str = "", limit: int = 200) -> list[Incident]:
    """Incidents newest first, each with ``postmortem_overdue`` set."""
    qs = Incident.objects.select_related("failure_class", "postmortem", "commander")
    if open_only:
        qs = qs.filter(status__in=OPEN_STATUSES)
    if status:
        qs = qs.filter(status=status)
    if severity:
        qs = qs.filter(severity=severity)
    return _with_overdue(list(qs.order_by("-number")[:limit]))


def incident_page(
    *, status: str = "", open_only: bool = False, severity: str = "", before: int | None = None, limit: int = 50
) -> tuple[list[Incident], int | None]:
    """Incidents newest first (by number), ``limit`` of them below the number ``before``, each with
    ``postmortem_overdue`` set, and the number the next page starts below (None: no more). For the API."""
    qs = Incident.objects.select_related("failure_class", "postmortem", "commander", "declared_by")
    if open_only:
        qs = qs.filter(status__in=OPEN_STATUSES)
    if status:
        qs = qs.filter(status=status)
    if severity:
        qs = qs.filter(severity=severity)
    rows, next_before = keyset_page(qs, key="number", descending=True, cursor=before, limit=limit)
    return _with_overdue(rows), next_before


def timeline_page(
    *, incident: Incident, kind: str = "", after: int | None = None, limit: int = 100
) -> tuple[list[TimelineEntry], int | None]:
    """The incident's timeline oldest first (by id), ``limit`` entries after the id ``after``, optionally of one
    ``kind`` only (``note``: the notes), and the id the next page starts after (None: no more)."""
    qs = incident.timeline.select_related("actor")
    if kind:
        qs = qs.filter(kind=kind)
    return keyset_page(qs, key="id", descending=False, cursor=after, limit=limit)


def incident_get(*, number: int) -> Incident:
    """The incident with its class, people, agents and traces; raises Incident.DoesNotExist."""
    incident = (
        Incident.objects.select_related("failure_class", "commander", "declared_by", "postmortem")
        .prefetch_related(
            Prefetch("agents", queryset=Agent.objects.order_by("slug")),
            Prefetch("traces", queryset=Trace.objects.select_related("agent").order_by("-started_at")),
        )
        .get(number=number)
    )
    return _with_overdue([incident])[0]


def incident_get_or_404(*, number: int) -> Incident:
    """``incident_get`` for a page: an unknown number raises Http404."""
    try:
        return incident_get(number=number)
    except Incident.DoesNotExist:
        raise Http404("No incident with this number.") from None


def incident_status_history(*, incident: Incident) -> list[StatusStep]:
    """Each lifecycle status in order with the time it was reached (None if not yet) and whether it is current."""
    return [
        {
            "status": status.value,
            "label": status.label,
            "at": incident.status_time(status.value),
            "current": incident.status == status.value,
        }
        for status in IncidentStatus
    ]


def timeline_list(*, incident: Incident) -> QuerySet[TimelineEntry]:
    return incident.timeline.select_related("actor").order_by("created_at", "id")


def failure_class_list() -> QuerySet[FailureClass]:
    return FailureClass.objects.all()


def severity_list() -> list[SeverityInfo]:
    """The severities with their definitions, most severe first."""
    return [{"value": s.value, "label": s.label, "definition": SEVERITY_DEFINITIONS[s]} for s in Severity]


def incident_counts_by_failure_class(
    *, since: datetime | None = None, include_drills: bool = True
) -> FailureClassCounts:
    """Incident counts per failure class and severity, for a stacked bar chart.

    Returns ``{"classes": [names in taxonomy order], "severities": [...],
    "counts": {severity: [count per class]}, "rows": [{"name", "counts": [per
    severity], "total"}], "total": n}``; every class is present, with zeros,
    so the chart shows the whole taxonomy.
    """
    classes = list(FailureClass.objects.order_by("order", "name").values_list("id", "name"))
    qs = Incident.objects.all()
    if not include_drills:
        qs = qs.exclude(agents__is_drill=True)
    if since:
        qs = qs.filter(declared_at__gte=since)
    found = {
        (row["failure_class_id"], row["severity"]): row["n"]
        for row in qs.values("failure_class_id", "severity").annotate(n=Count("id"))
    }
    severities = list(Severity.values)
    counts = {sev: [found.get((pk, sev), 0) for pk, _ in classes] for sev in severities}
    rows: list[FailureClassRow] = []
    for pk, name in classes:
        per_severity = [found.get((pk, sev), 0) for sev in severities]
        rows.append({"name": name, "counts": per_severity, "total": sum(per_severity)})
    return {
        "classes": [name for _, name in classes],
        "severities": severities,
        "counts": counts,
        "rows": rows,
        "total": sum(found.values()),
    }


def incident_close_blockers(incident: Incident) -> list[str]:
    """What is still missing before ``incident`` may close (empty: it may close), from the closure checks."""
    if incident.status == IncidentStatus.CLOSED:
        return []
    return hooks.closure_blockers(incident)


class LooseEnd(TypedDict):
    """One thing closing would leave behind: the sentence, and what the close page offers to tie it."""

    text: str
    kind: str  # action_items | runbook | alerts | agent | resolved
    agent: str  # the stopped agent's slug (kind "agent"), else ""
    alerts: list[Alert]  # the unresolved alerts (kind "alerts"), else []


def incident_loose_end_items(incident: Incident) -> list[LooseEnd]:
    """What closing would leave behind (empty: nothing). Closing with loose ends needs a
    confirmation; they are not blockers (those are :func:`incident_close_blockers`)."""
    if incident.status == IncidentStatus.CLOSED:
        return []
    ends: list[LooseEnd] = []

    def end(text: str, kind: str, agent: str = "", alerts: list[Alert] | None = None) -> None:
        ends.append({"text": text, "kind": kind, "agent": agent, "alerts": alerts or []})

    items = ActionItem.objects.filter(
        postmortem__incident=incident, status__in=[ActionItem.Status.OPEN, ActionItem.Status.IN_PROGRESS]
    ).count()
    if items:
        end(f"{items} open action item{pluralize(items)}", "action_items")
    steps = incident.runbook_steps.filter(done_at__isnull=True).count()
    if steps:
        end(f"{steps} runbook step{pluralize(steps)} not done", "runbook")
    alerts = list(incident.alerts.exclude(status=Alert.Status.RESOLVED).order_by("-last_seen")[:50])
    if alerts:
        count = incident.alerts.exclude(status=Alert.Status.RESOLVED).count()
        end(f"{count} alert{pluralize(count)} not resolved", "alerts", alerts=alerts)
    for agent in incident.agents.filter(state__in=[GateState.KILLED, GateState.PAUSED]).order_by("slug"):
        end(f"Agent {agent.slug} is still {agent.get_state_display().lower()}", "agent", agent=agent.slug)
    if incident.resolved_at is None:
        end("The incident was never marked Resolved", "resolved")
    return ends


def incident_loose_ends(incident: Incident) -> list[str]:
    """The sentences of :func:`incident_loose_end_items`."""
    return [e["text"] for e in incident_loose_end_items(incident)]


def runbook_by_phase(*, incident: Incident) -> list[RunbookGroup]:
    """The incident's runbook steps grouped by phase in loop order: [{"phase", "label", "steps", "done"}]."""
    steps = list(incident.runbook_steps.select_related("done_by").order_by("order", "id"))
    groups: list[RunbookGroup] = []
    for phase in RunbookPhase:
        in_phase = [s for s in steps if s.phase == phase.value]
        if in_phase:
            done = sum(1 for s in in_phase if s.done_at)
            groups.append({"phase": phase.value, "label": phase.label, "steps": in_phase, "done": done})
    return groups


CHANGES_WINDOW_HOURS = 24


def incident_change_list(*, incident: Incident) -> list[ChangeEvent]:
    """What changed on the incident's agents in the 24 h before it was declared, most recent first."""
    agent_ids = list(incident.agents.values_list("pk", flat=True))
    if not agent_ids:
        return []
    return change_list_before(agent_ids=agent_ids, until=incident.declared_at, hours=CHANGES_WINDOW_HOURS)


def retention_kept_traces() -> QuerySet:
    """The traces retention keeps for incidents (``traces.hooks.retention_keepers``): an incident's traces and a
    post-mortem's attached traces, as primary keys."""
    incident_traces = Incident.traces.through.objects.values("trace_id")
    return incident_traces.union(PostMortem.attached_traces.through.objects.values("trace_id"))
