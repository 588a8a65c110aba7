"""Writes for alerts: raise (the one door: deduplicated by fingerprint), acknowledge, resolve,
declare an incident from one, and the detector settings. One transaction each."""

import hashlib
import logging
import math
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from agents.change_log import freeze_guarded
from agents.models import Agent
from core import clock
from core.actors import Actor
from core.errors import Conflict
from core.roles import ADMIN, RESPONDER
from incidents import signals
from incidents.alerts.selectors import detector_registry
from incidents.models import OPEN_STATUSES, Alert, DetectorSetting, FailureClass, Incident, TimelineKind
from incidents.services import incident_declare, timeline_record
from traces.models import Trace
from traces.services import trace_flag

logger = logging.getLogger(__name__)

MAX_THRESHOLD = 1e12


FINGERPRINT_MAX = 64  # Alert.fingerprint's length


@transaction.atomic
def alert_raise(
    *,
    detector: str,
    agent: Agent | None,
    fingerprint: str,
    title: str,
    trace: Trace | None = None,
    span_id: str = "",
    suggested_severity: str = "SEV2",
    failure_class_slug: str = "",
    details: dict[str, Any] | None = None,
    source: str = Alert.Source.FIREBREAK,
    source_url: str = "",
    integration: str = "",
) -> tuple[Alert, bool]:
    """Raise an alert, deduplicated by fingerprint: an open alert with the same fingerprint
    counts one more occurrence (count, last_seen, details) instead of a new row.

    Returns (alert, created). Two workers raising one fingerprint at once make one alert counted twice (the
    second insert waits for the first and counts on it). A resolved alert with the fingerprint opens again. A new alert
    goes on the timeline of every open incident of its agent. ``agent`` is None only for an alert
    from outside (``source`` not firebreak) that names no registered agent; ``source_url`` is its
    page at the source and ``integration`` the name of the key that posted it.
    """
    now = clock.now()
    failure_class = FailureClass.objects.filter(slug=failure_class_slug).first() if failure_class_slug else None
    fingerprint = fingerprint_stored(fingerprint)
    alert = Alert.objects.select_for_update().filter(fingerprint=fingerprint).first()
    created = False
    if alert is None:
        try:
            with transaction.atomic():  # a savepoint: another worker may raise the same fingerprint meanwhile
                alert = Alert.objects.create(
                    detector=detector, agent=agent, trace=trace, span_id=span_id, fingerprint=fingerprint,
                    title=title[:300], suggested_severity=suggested_severity, failure_class=failure_class,
                    details=details or {}, first_seen=now, last_seen=now, source=source, source_url=source_url,
                    integration=integration,
                )  # fmt: skip
            created = True
        except IntegrityError:  # it did, and committed first: this is one more occurrence of its alert
            alert = Alert.objects.select_for_update().get(fingerprint=fingerprint)
    if not created:
        alert.count += 1
        alert.last_seen = now
        alert.details = details or alert.details
        alert.source_url = source_url or alert.source_url
        reopened = alert.status == Alert.Status.RESOLVED
        if reopened:
            alert.status = Alert.Status.OPEN
            _announce(alert, "reopened", Actor.detector(detector))
        alert.save(update_fields=["count", "last_seen", "details", "status", "source_url"])
    if created:
        _announce(alert, "raised", Actor.detector(detector))
        incidents = Incident.objects.filter(agents=agent, status__in=OPEN_STATUSES) if agent is not None else []
        for incident in incidents:
            timeline_record(
                incident=incident, kind=TimelineKind.ALERT, body=f"Alert ({detector}): {title}",
                actor=Actor.detector(detector), data={"alert": alert.pk, "fingerprint": fingerprint},
            )  # fmt: skip
    return alert, created


def fingerprint_stored(fingerprint: str) -> str:
    """The fingerprint as stored: one longer than the column is hashed, so long ones deduplicate too."""
    if len(fingerprint) > FINGERPRINT_MAX:
        return hashlib.sha256(fingerprint.encode()).hexdigest()
    return fingerprint


@transaction.atomic
def incident_declare_from_alert(*, alert: Alert, trace: Trace | None = None, span_id: str = "") -> Incident:
    """A detector's rule "declare": severity and class as suggested, the alert's agent and trace
    attached, the offending step flagged on the trace. Returns the alert's incident if it has one."""
    if alert.incident is not None:  # no query when incident_id is empty
        return alert.incident
    if trace is not None and span_id and not trace.flagged_span_id:
        trace_flag(trace=trace, span_id=span_id, note=f"Flagged by {alert.detector}: {alert.title}"[:500],
                   actor=Actor.detector(alert.detector))  # fmt: skip
    return incident_declare(
        title=alert.title,
        severity=alert.suggested_severity,
        failure_class=alert.failure_class,  # None: not yet classified, rather than a guess
        agents=[alert.agent] if alert.agent is not None else [],
        traces=[trace] if trace is not None else [],
        summary=f"Declared by the {alert.detector} detector."
        if alert.source == Alert.Source.FIREBREAK
        else f"Declared from an alert sent by {alert.get_source_display()} ({alert.integration or 'no integration'}).",
        actor=Actor.detector(alert.detector),
        alert=alert,
    )


def _announce(alert: Alert, event: str, actor: Actor) -> None:
    """``signals.alert_changed`` once the write commits (senders enqueue their work from it)."""
    pk, label = alert.pk, actor.label
    transaction.on_commit(lambda: signals.alert_changed.send(sender=Alert, alert_id=pk, event=event, actor_label=label))


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


def _refresh(target: Alert, source: Alert) -> None:
    target.status = source.status


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: Actor) -> Alert:
    """Open → acknowledged: someone is looking. Needs the responder role; raises Conflict unless open."""
    actor.require(RESPONDER)
    locked = _locked(alert)
    if locked.status != Alert.Status.OPEN:
        raise Conflict(f"Only an open alert can be acknowledged; this one is {locked.get_status_display().lower()}.")
    locked.status = Alert.Status.ACKNOWLEDGED
    locked.handled_by = actor.label
    locked.handled_at = clock.now()
    locked.save(update_fields=["status", "handled_by", "handled_at"])
    _refresh(alert, locked)
    _announce(alert, "acknowledged", actor)
    logger.info("alert %s acknowledged by %s", alert.pk, actor.label)
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, actor: Actor) -> Alert:
    """Open or acknowledged → resolved. A new occurrence (same fingerprint) opens it again.
    Raises Conflict when it is already resolved."""
    actor.require(RESPONDER)
    locked = _locked(alert)
    if locked.status == Alert.Status.RESOLVED:
        raise Conflict("This alert is already resolved.")
    locked.status = Alert.Status.RESOLVED
    locked.handled_by = actor.label
    locked.handled_at = clock.now()
    locked.save(update_fields=["status", "handled_by", "handled_at"])
    _refresh(alert, locked)
    _announce(alert, "resolved", actor)
    logger.info("alert %s resolved by %s", alert.pk, actor.label)
    return alert


def _number(name: str, value: object) -> int | float:
    if isinstance(value, bool):
        raise ValidationError({"thresholds": f"{name}: expected a number, got {value!r}."})
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValidationError({"thresholds": f"{name}: expected a number, got {text!r}."}) from None
    if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValidationError({"thresholds": f"{name}: expected a number, got {value!r}."})
    if value < 0 or value > MAX_THRESHOLD:
        raise ValidationError({"thresholds": f"{name}: must be between 0 and {MAX_THRESHOLD:g}."})
    return value


def thresholds_clean(*, detector: str, thresholds: Mapping[str, object]) -> dict[str, int | float]:
    """Validate threshold overrides against the detector's defaults: known names, numeric values."""
    spec = detector_registry().get(detector)
    if spec is None:
        raise ValidationError({"detector": f"Unknown detector {detector!r}."})
    if not isinstance(thresholds, dict):
        raise ValidationError({"thresholds": "Thresholds must be an object of name → number."})
    unknown = sorted(set(thresholds) - set(spec.defaults))
    if unknown:
        known = ", ".join(sorted(spec.defaults)) or "none"
        raise ValidationError(
            {"thresholds": f"Unknown threshold {', '.join(map(repr, unknown))} for {detector}; known: {known}."}
        )
    return {name: _number(name, value) for name, value in thresholds.items()}


@freeze_guarded("changing a detector's settings")
@transaction.atomic
def detector_setting_save(
    *,
    detector: str,
    agent: Agent | None = None,
    enabled: bool,
    thresholds: Mapping[str, object],
    rule: str,
    actor: Actor,
) -> DetectorSetting:
    """Create or replace the setting of one detector for all agents (agent None) or one agent. Admins only."""
    if not actor.can(ADMIN):
        raise PermissionDenied("Editing detector settings needs the admin role.")
    cleaned = thresholds_clean(detector=detector, thresholds=thresholds)
    rule = rule or ""
    if rule not in ("", *DetectorSetting.Rule.values):
        raise ValidationError({"rule": f"Unknown rule {rule!r}; one of {', '.join(DetectorSetting.Rule.values)}."})
    setting = DetectorSetting.objects.select_for_update().filter(detector=detector, agent=agent).first()
    if setting is None:
        setting = DetectorSetting(detector=detector, agent=agent)
    setting.enabled = bool(enabled)
    setting.thresholds = cleaned
    setting.rule = rule
    setting.save()
    logger.info("detector setting %s saved by %s", setting, actor.label)
    return setting
