"""Writes for incidents: declaration, lifecycle, runbook, timeline.

Every service here is one transaction: it writes the change and its timeline
entry together, or nothing. Notifications leave only after commit.
"""

import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypedDict, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q

from agents.models import Agent, GateState
from core import clock
from core.actors import Actor
from core.errors import Conflict
from core.roles import RESPONDER, has_role
from incidents import hooks, selectors, signals
from incidents.models import (
    OPEN_STATUSES,
    STATUS_ORDER,
    Alert,
    FailureClass,
    Incident,
    IncidentStatus,
    RunbookPhase,
    RunbookStep,
    Severity,
    TimelineEntry,
    TimelineKind,
)
from traces.models import Trace
from traces.selectors.runs import trace_get_by_ref

logger = logging.getLogger(__name__)

NOTE_MAX = 10_000
TITLE_MAX = 300
SUMMARY_MAX = 20_000


class RunbookStepSpec(TypedDict):
    """A runbook step before it is an incident's RunbookStep (FailureClass.runbook holds these)."""

    phase: str
    text: str


# Steps every incident of a severity gets on top of its failure class's runbook.
SEVERITY_RUNBOOK_EXTRAS: dict[str, list[RunbookStepSpec]] = {
    Severity.SEV1: [
        {"phase": RunbookPhase.CONTAIN, "text": "Page the owning team"},
        {"phase": RunbookPhase.LEARN, "text": "Post-mortem due in 48 hours"},
    ],
}
PHASE_ORDER = [p.value for p in RunbookPhase]

# Incident numbers come from max(number) + 1 under this transaction-scoped
# advisory lock, so two declarations at once cannot take the same number.
NUMBER_LOCK_KEY = 0x1C1DE27  # arbitrary, fixed


def timeline_record(
    *,
    incident: Incident,
    kind: str,
    body: str,
    actor: Actor,
    data: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> TimelineEntry:
    """Put one entry on the incident's timeline: the only code that writes TimelineEntry rows.

    ``body`` is Markdown for notes and plain text otherwise (both escaped or sanitized on
    display); ``actor`` gives the label shown and, for a person, the user linked.
    ``created_at`` defaults to now. Runs in the caller's transaction; ``signals.timeline_recorded``
    goes out once it commits.
    """
    entry = TimelineEntry.objects.create(
        incident=incident,
        kind=kind,
        body=body,
        actor=actor.user,
        actor_label=actor.label,
        data=data or {},
        created_at=created_at or clock.now(),
    )
    pk, incident_pk, label = entry.pk, incident.pk, actor.label
    transaction.on_commit(
        lambda: signals.timeline_recorded.send(
            sender=TimelineEntry, entry_id=pk, incident_id=incident_pk, kind=kind, actor_label=label
        )
    )
    return entry


def _announce(incident: Incident, event: str, actor: Actor, detail: str = "") -> None:
    """``signals.incident_changed`` once the write commits (the outbound senders connect to it)."""
    pk, label = incident.pk, actor.label
    transaction.on_commit(
        lambda: signals.incident_changed.send(
            sender=Incident, incident_id=pk, event=event, detail=detail, actor_label=label
        )
    )


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _refresh(target: Incident, source: Incident) -> None:
    """Copy the locked row's fields onto the caller's object, so it reflects the write."""
    for field in Incident._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


# --- declaration ----------------------------------------------------------------------------------


_Ref = TypeVar("_Ref", Agent, Trace)


def _split_ids(value: str | Iterable[_Ref | str] | None) -> list[_Ref | str]:
    """Objects as they are, strings stripped; one string may hold several ids (comma or space separated)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [v.strip() if isinstance(v, str) else v for v in value if v not in ("", None)]


def _resolve_failure_class(value: FailureClass | str | None) -> FailureClass | None:
    """None or "" for "not yet classified"; an unknown slug is an error, never silently None."""
    if isinstance(value, FailureClass):
        return value
    if value is None or value == "":
        return None
    found = FailureClass.objects.filter(slug=value or "").first()
    if found is None:
        raise ValidationError({"failure_class": [f"Unknown failure class {str(value)[:63]!r}."]})
    return found


def _resolve_agents(values: str | Iterable[Agent | str] | None) -> list[Agent]:
    items = _split_ids(values)
    slugs = [v for v in items if not isinstance(v, Agent)]
    found = {a.slug: a for a in Agent.objects.filter(slug__in=slugs)}
    missing = [s for s in slugs if s not in found]
    if missing:
        raise ValidationError({"agents": [f"Unknown agent {', '.join(repr(str(s)[:63]) for s in missing[:5])}."]})
    agents = {a.pk: a for a in items if isinstance(a, Agent)}
    agents.update({a.pk: a for a in found.values()})
    return list(agents.values())


def _resolve_traces(values: str | Iterable[Trace | str] | None) -> list[Trace]:
    items = _split_ids(values)
    ids = [v for v in items if not isinstance(v, Trace)]
    # ``<trace_id>`` or ``<trace_id>@<agent>``: a trace id may hold several agents' trajectories.
    found: dict[str, Trace] = {}
    for ref in ids:
        with contextlib.suppress(Trace.DoesNotExist):
            found[ref] = trace_get_by_ref(ref=ref)
    missing = [t for t in ids if t not in found]
    if missing:
        raise ValidationError({"traces": [f"Unknown trace {', '.join(repr(str(t)[:32]) for t in missing[:5])}."]})
    traces = {t.pk: t for t in items if isinstance(t, Trace)}
    traces.update({t.pk: t for t in found.values()})
    return list(traces.values())


def _resolve_commander(value: User | str | None, actor: Actor) -> User | None:
    if value is None or value == "":
        commander: User | None = actor.user
        return commander
    if isinstance(value, User):
        return value
    user = get_user_model().objects.filter(username=value).first()
    if user is None or not user.is_active:
        raise ValidationError({"commander": [f"Unknown user {str(value)[:150]!r}."]})
    return user


def _next_number() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [NUMBER_LOCK_KEY])
    last = Incident.objects.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def _class_steps(failure_class: FailureClass | None) -> list[RunbookStepSpec]:
    if failure_class is None:
        return []
    return [s for s in failure_class.runbook or [] if s.get("phase") in PHASE_ORDER and s.get("text")]


def _runbook_for(failure_class: FailureClass | None, severity: str) -> list[RunbookStepSpec]:
    steps = _class_steps(failure_class) + SEVERITY_RUNBOOK_EXTRAS.get(severity, [])
    # Group by phase, keeping the class's order inside each phase and the extras last.
    return sorted(steps, key=lambda s: PHASE_ORDER.index(s["phase"]))


@transaction.atomic
def incident_declare(
    *,
    title: str,
    severity: str,
    failure_class: FailureClass | str | None = None,
    agents: str | Iterable[Agent | str] | None = (),
    traces: str | Iterable[Trace | str] | None = (),
    commander: User | str | None = None,
    summary: str = "",
    actor: Actor,
    alert: Alert | None = None,
) -> Incident:
    """Declare an incident: the next number (INC-N), its runbook steps, a "declared" timeline entry.

    ``failure_class`` is a FailureClass, its slug, or None ("not yet classified": triage sets it
    later with :func:`incident_failure_class_set`; the post-mortem cannot be published without it);
    ``agents`` Agents or slugs;
    ``traces`` Traces or trace ids (a string may hold several, comma or space
    separated); ``commander`` a user or username (default: the actor). With
    ``alert`` the alert is linked and acknowledged. The alert's agent and trace
    are attached too.

    Raises PermissionDenied (the actor is not a responder) or ValidationError
    keyed by field (bad severity, unknown class, agent, trace or commander,
    empty title); nothing is written when it raises. After commit
    ``signals.incident_changed`` announces "declared" (the notifications follow from it).
    """
    actor.require(RESPONDER)
    errors: dict[str, list[str]] = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = ["A title is required."]
    elif len(title) > TITLE_MAX:
        errors["title"] = [f"At most {TITLE_MAX} characters."]
    if severity not in Severity.values:
        errors["severity"] = [f"Severity must be one of {', '.join(Severity.values)}."]
    summary = summary or ""
    if len(summary) > SUMMARY_MAX:
        errors["summary"] = [f"At most {SUMMARY_MAX} characters."]
    fc: FailureClass | None = None
    agent_list: list[Agent] = []
    trace_list: list[Trace] = []
    commander_user: User | None = None
    try:
        fc = _resolve_failure_class(failure_class)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        agent_list = _resolve_agents(agents)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        trace_list = _resolve_traces(traces)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        commander_user = _resolve_commander(commander, actor)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)

    if alert is not None:
        if alert.agent is not None and alert.agent_id not in {a.pk for a in agent_list}:
            agent_list.append(alert.agent)
        if alert.trace_id and alert.trace_id not in {t.pk for t in trace_list} and alert.trace is not None:
            trace_list.append(alert.trace)

    incident = Incident.objects.create(
        number=_next_number(),
        title=title,
        severity=severity,
        failure_class=fc,
        summary=summary,
        commander=commander_user,
        declared_by=actor.user,
        declared_at=clock.now(),
    )
    incident.agents.set(agent_list)
    incident.traces.set(trace_list)
    RunbookStep.objects.bulk_create(
        RunbookStep(incident=incident, phase=step["phase"], text=step["text"][:500], order=i)
        for i, step in enumerate(_runbook_for(fc, severity))
    )
    body = f"Declared {severity} · {fc.name if fc else 'not yet classified'}"
    if agent_list:
        body += " · agents " + ", ".join(a.slug for a in agent_list)
    if trace_list:
        body += f" · {len(trace_list)} trace{'s' if len(trace_list) != 1 else ''}"
    timeline_record(
        incident=incident,
        kind=TimelineKind.DECLARED,
        body=body,
        actor=actor,
        data={"severity": severity, "failure_class": fc.slug if fc else None, "alert": alert.pk if alert else None},
    )
    if alert is not None:
        Alert.objects.filter(pk=alert.pk).update(incident=incident, status=Alert.Status.ACKNOWLEDGED)
        timeline_record(
            incident=incident,
            kind=TimelineKind.ALERT,
            body=f"From alert: {alert.title}",
            actor=actor,
            data={"alert": alert.pk},
        )
    if agent_list and all(a.state in (GateState.KILLED, GateState.PAUSED) for a in agent_list):
        # The detector (or a responder) stopped every agent before declaring: say so, not "Declared".
        stopped = ", ".join(f"{a.slug} {a.get_state_display().lower()}" for a in agent_list)
        _apply_status(
            incident,
            IncidentStatus.CONTAINED,
            Actor.system("firebreak"),
            body=f"Status: Declared → Contained\n\nContained: every linked agent is stopped ({stopped})",
        )
    _announce(incident, "declared", actor)
    return incident


# --- lifecycle ------------------------------------------------------------------------------------


def _status_label(status: str) -> str:
    return IncidentStatus(status).label


@transaction.atomic
def incident_status_set(*, incident: Incident, status: str, actor: Actor, note: str = "") -> Incident:
    """Move the incident forward to ``status`` (skipping allowed), stamping ``<status>_at``.

    ``closed`` goes through :func:`incident_close` (its checks apply). Raises
    PermissionDenied (not a responder), ValidationError (unknown status, note too
    long) or Conflict (not forward); nothing is written when it raises. After commit
    ``signals.incident_changed`` announces the new status (the notifications follow from it).
    """
    actor.require(RESPONDER)
    if status == IncidentStatus.CLOSED:
        return incident_close(incident=incident, actor=actor, note=note)
    if status not in STATUS_ORDER:
        raise ValidationError({"status": [f"Unknown status {str(status)[:20]!r}."]})
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": [f"At most {NOTE_MAX:,} characters."]})
    locked = _locked(incident)
    if STATUS_ORDER.index(status) <= STATUS_ORDER.index(locked.status):
        raise Conflict({"status": [f"The incident is {locked.get_status_display().lower()}: it only moves forward."]})
    _apply_status(locked, status, actor, note=note)
    _refresh(incident, locked)
    return incident


def _apply_status(locked: Incident, status: str, actor: Actor, *, note: str = "", body: str = "") -> None:
    previous = locked.status
    locked.status = status
    setattr(locked, f"{status}_at", clock.now())
    locked.save()
    body = body or f"Status: {_status_label(previous)} → {_status_label(status)}"
    if note:
        body += f"\n\n{note}"
    timeline_record(
        incident=locked, kind=TimelineKind.STATUS, body=body, actor=actor, data={"before": previous, "after": status}
    )
    _announce(locked, status, actor)


class LooseEnds(Conflict):
    """Closing would leave loose ends behind; ``loose_ends`` lists them. Close again with confirm."""

    def __init__(self, loose_ends: list[str]) -> None:
        super().__init__(["Closing leaves loose ends: " + "; ".join(loose_ends) + ". Confirm to close anyway."])
        self.loose_ends = loose_ends


@transaction.atomic
def incident_close(*, incident: Incident, actor: Actor, note: str = "", confirm: bool = False) -> Incident:
    """Close the incident once every closure check passes (``incidents.hooks.closure_checks``).

    Loose ends (open action items, an unfinished runbook, an unresolved alert, a
    still-stopped agent, Resolved skipped: ``selectors.incident_loose_ends``) do not
    block, but without ``confirm`` they raise LooseEnds (a Conflict) listing them;
    with ``confirm`` they go on the closing timeline entry.

    Raises PermissionDenied (not a responder), ValidationError listing every
    missing item (or saying it is already closed) or LooseEnds; nothing is
    written when it raises.
    """
    actor.require(RESPONDER)
    locked = _locked(incident)
    if locked.status == IncidentStatus.CLOSED:
        raise ValidationError({"status": ["The incident is already closed."]})
    missing = hooks.closure_blockers(locked)
    if missing:
        raise ValidationError(missing)
    loose_ends = selectors.incident_loose_ends(locked)
    if loose_ends and not confirm:
        raise LooseEnds(loose_ends)
    note = (note or "").strip()[:NOTE_MAX]
    if loose_ends:
        note = (note + "\n\n" if note else "") + "Closed with loose ends: " + "; ".join(loose_ends) + "."
    _apply_status(locked, IncidentStatus.CLOSED, actor, note=note)
    _refresh(incident, locked)
    return incident


@transaction.atomic
def incident_severity_set(*, incident: Incident, severity: str, actor: Actor, note: str = "") -> Incident:
    """Change the severity (timeline entry; announced after commit). Closed incidents keep theirs.

    Raises PermissionDenied or ValidationError (unknown or unchanged severity, closed); nothing written.
    """
    actor.require(RESPONDER)
    if severity not in Severity.values:
        raise ValidationError({"severity": [f"Severity must be one of {', '.join(Severity.values)}."]})
    locked = _locked(incident)
    if locked.status == IncidentStatus.CLOSED:
        raise Conflict({"severity": ["A closed incident keeps its severity."]})
    if locked.severity == severity:
        raise ValidationError({"severity": [f"The incident is already {severity}."]})
    previous = locked.severity
    locked.severity = severity
    locked.save()
    body = f"Severity: {previous} → {severity}"
    note = (note or "").strip()[:NOTE_MAX]
    if note:
        body += f"\n\n{note}"
    timeline_record(
        incident=locked,
        kind=TimelineKind.SEVERITY,
        body=body,
        actor=actor,
        data={"before": previous, "after": severity},
    )
    _announce(locked, "severity", actor, f"was {previous}")
    _refresh(incident, locked)
    return incident


@transaction.atomic
def incident_auto_contain(*, agent: Agent) -> list[Incident]:
    """Move open incidents linked to ``agent`` whose linked agents are all killed or paused to contained.

    Only incidents before contained move; each gets a timeline entry and is
    announced "contained". Returns the incidents moved.
    """
    stopped = {GateState.KILLED, GateState.PAUSED}
    candidates = (
        Incident.objects.select_for_update(of=("self",))
        .filter(agents=agent, status__in=[IncidentStatus.DECLARED, IncidentStatus.INVESTIGATING])
        .order_by("number")
    )
    moved: list[Incident] = []
    for incident in candidates:
        states = set(incident.agents.values_list("state", flat=True))
        if states and states <= stopped:
            _apply_status(
                incident,
                IncidentStatus.CONTAINED,
                Actor.system("firebreak"),
                body=f"Status: {_status_label(incident.status)} → Contained\n\n"
                "Contained: every linked agent is stopped",
            )
            moved.append(incident)
    return moved


@transaction.atomic
def incident_command_take(*, incident: Incident, actor: Actor) -> Incident:
    """The actor (a person with the responder role) becomes the incident's commander; a timeline entry
    says who took over from whom.

    Raises PermissionDenied (not a responder, or not a person) or ValidationError (already the
    commander, closed incident); nothing is written when it raises.
    """
    actor.require(RESPONDER)
    if actor.user is None:
        raise PermissionDenied("Only a person can take command.")
    locked = _locked(incident)
    if locked.status == IncidentStatus.CLOSED:
        raise Conflict({"commander": ["A closed incident keeps its commander."]})
    if locked.commander_id == actor.user.pk:
        raise ValidationError({"commander": ["You are already the commander."]})
    previous = locked.commander
    locked.commander = actor.user
    locked.save()
    who = actor.user.get_username()
    body = f"{who} took command" + (f" from {previous.get_username()}" if previous else "")
    timeline_record(
        incident=locked,
        kind=TimelineKind.STATUS,
        body=body,
        actor=actor,
        data={"commander_before": previous.get_username() if previous else None, "commander_after": who},
    )
    _refresh(incident, locked)
    return incident


@transaction.atomic
def incident_commander_set(*, incident: Incident, username: str, actor: Actor) -> Incident:
    """Hand command to the person ``username`` (a responder or admin); a timeline entry says who handed
    it from whom to whom.

    Raises PermissionDenied (the actor is not a responder), ValidationError naming ``username`` (no
    such person, or one who cannot respond) or Conflict (closed incident, already the commander);
    nothing is written when it raises.
    """
    actor.require(RESPONDER)
    person = get_user_model().objects.filter(username=username, is_active=True).first()
    if person is None:
        raise ValidationError({"username": [f"No person named {username[:150]!r}."]})
    if not has_role(person, RESPONDER):
        raise ValidationError(
            {"username": [f"{person.get_username()} is a viewer: a commander needs the responder role."]}
        )
    locked = _locked(incident)
    if locked.status == IncidentStatus.CLOSED:
        raise Conflict({"commander": ["A closed incident keeps its commander."]})
    if locked.commander_id == person.pk:
        raise Conflict({"commander": [f"{person.get_username()} is already the commander."]})
    previous = locked.commander
    locked.commander = person
    locked.save()
    who = person.get_username()
    body = f"{actor.label} handed command to {who}" + (f" (was {previous.get_username()})" if previous else "")
    timeline_record(
        incident=locked,
        kind=TimelineKind.STATUS,
        body=body,
        actor=actor,
        data={"commander_before": previous.get_username() if previous else None, "commander_after": who},
    )
    _refresh(incident, locked)
    return incident


@transaction.atomic
def incident_failure_class_set(
    *, incident: Incident, failure_class: FailureClass | str, actor: Actor, note: str = ""
) -> Incident:
    """Classify the incident (or change its class): a timeline entry, and the class's runbook
    steps added to the runbook when the incident had none of them yet.

    Raises PermissionDenied (not a responder) or ValidationError (unknown or unchanged class,
    closed incident); nothing is written when it raises.
    """
    actor.require(RESPONDER)
    fc = _resolve_failure_class(failure_class)
    if fc is None:
        raise ValidationError({"failure_class": ["Choose a failure class."]})
    locked = _locked(incident)
    if locked.status == IncidentStatus.CLOSED:
        raise ValidationError({"failure_class": ["A closed incident keeps its failure class."]})
    if locked.failure_class_id == fc.pk:
        raise ValidationError({"failure_class": [f"The incident is already classified as {fc.name}."]})
    previous = locked.failure_class  # one query, before it changes
    locked.failure_class = fc
    locked.save()
    if previous is None:
        start = (locked.runbook_steps.order_by("-order").values_list("order", flat=True).first() or 0) + 1
        RunbookStep.objects.bulk_create(
            RunbookStep(incident=locked, phase=step["phase"], text=step["text"][:500], order=start + i)
            for i, step in enumerate(sorted(_class_steps(fc), key=lambda s: PHASE_ORDER.index(s["phase"])))
        )
    body = f"Failure class: {previous.name if previous else 'not yet classified'} → {fc.name}"
    note = (note or "").strip()[:NOTE_MAX]
    if note:
        body += f"\n\n{note}"
    timeline_record(
        incident=locked,
        kind=TimelineKind.STATUS,
        body=body,
        actor=actor,
        data={"failure_class_before": previous.slug if previous else None, "failure_class_after": fc.slug},
    )
    _refresh(incident, locked)
    return incident


# --- runbook and timeline -------------------------------------------------------------------------


@transaction.atomic
def runbook_tick(*, incident: Incident, step_id: int, actor: Actor, done: bool = True) -> RunbookStep:
    """Mark one runbook step done (timed, by whom) or not done; either way a timeline entry.

    Raises PermissionDenied, RunbookStep.DoesNotExist (not a step of this
    incident) or ValidationError (already in that state); nothing written.
    """
    actor.require(RESPONDER)
    step = RunbookStep.objects.select_for_update().get(pk=step_id, incident=incident)
    if step.is_done == done:
        raise ValidationError({"step": ["Already done." if done else "Not done yet."]})
    step.done_at = clock.now() if done else None
    step.done_by = actor.user if done else None
    step.save(update_fields=["done_at", "done_by"])
    verb = "Done" if done else "Reopened"
    timeline_record(
        incident=incident,
        kind=TimelineKind.RUNBOOK,
        body=f"{verb} ({step.get_phase_display().lower()}): {step.text}",
        actor=actor,
        data={"step": step.pk, "done": done},
    )
    return step


@transaction.atomic
def timeline_note_add(*, incident: Incident, body: str, actor: Actor) -> TimelineEntry:
    """Add a Markdown note (at most 10,000 characters; rendered and sanitized on display).

    Raises PermissionDenied or ValidationError (empty or too long); nothing written.
    """
    actor.require(RESPONDER)
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["The note is empty."]})
    if len(body) > NOTE_MAX:
        raise ValidationError({"body": [f"At most {NOTE_MAX:,} characters (this one has {len(body):,})."]})
    return timeline_record(incident=incident, kind=TimelineKind.NOTE, body=body, actor=actor)


@transaction.atomic
def timeline_flag_record(*, trace: Trace, span_id: str, note: str, actor: Actor) -> list[TimelineEntry]:
    """Put a flagged step on the timeline of every open incident the trace is attached to."""
    incidents = Incident.objects.filter(traces=trace, status__in=OPEN_STATUSES).distinct()
    body = f"Flagged step `{span_id}` of trace `{trace.trace_id}` ({trace.agent.slug}): {note}"
    return [
        timeline_record(
            incident=incident,
            kind=TimelineKind.FLAG,
            body=body,
            actor=actor,
            data={"trace": trace.trace_id, "agent": trace.agent.slug, "span_id": span_id},
        )
        for incident in incidents
    ]


@transaction.atomic
def timeline_gate_record(
    *,
    agent: Agent,
    action: str,
    action_label: str,
    actor: Actor,
    reason: str,
    incident_number: int | None,
    detail: str = "",
) -> list[TimelineEntry]:
    """Put a gate change on the timeline of every open incident linked to the agent
    (and of the incident the action named, if any). ``detail`` says what changed beyond the action:
    "full → restricted", "pinned to prompt v3, model gpt-4o-2024-08-06", "session s-1 until …"."""
    incidents = (
        Incident.objects.filter(Q(agents=agent) | Q(number=incident_number or -1))
        .filter(status__in=OPEN_STATUSES)
        .distinct()
    )
    body = f"{action_label}: `{agent.slug}`"
    if detail:
        body += f" ({detail})"
    body += f" by {actor.label}"
    if reason:
        body += f" — {reason}"
    return [
        timeline_record(
            incident=incident,
            kind=TimelineKind.GATE,
            body=body,
            actor=actor,
            data={"agent": agent.slug, "action": action, "reason": reason, "detail": detail},
        )
        for incident in incidents
    ]
