"""Writes for inbound alerts: a batch from a monitoring tool becomes Firebreak alerts, in one transaction."""

import logging
from dataclasses import dataclass

from django.db import transaction

from agents.models import Agent
from core.actors import Actor
from incidents.alerts.services import alert_raise, alert_resolve, fingerprint_stored
from incidents.detection.engine import alert_rule_apply, detector_settings
from incidents.integrations.inbound.payloads import InboundAlert
from incidents.models import Alert

logger = logging.getLogger(__name__)

# The fingerprint's namespace per source: the same fingerprint from two sources, or two integrations of
# one source, is two alerts.
PREFIXES = {
    Alert.Source.ALERTMANAGER: "am",
    Alert.Source.GRAFANA: "gf",
    Alert.Source.DATADOG: "dd",
    Alert.Source.WEBHOOK: "wh",
}


@dataclass
class Outcome:
    fingerprint: str  # as the source sent it
    action: str  # raised | repeated | reopened | resolved | already_resolved | unknown | disabled
    alert: Alert | None = None
    note: str = ""


def inbound_fingerprint(*, source: str, integration: str, fingerprint: str) -> str:
    """``am:<integration>:<fingerprint>`` (hashed when longer than the column, as alert_raise stores it)."""
    return fingerprint_stored(f"{PREFIXES[Alert.Source(source)]}:{integration}:{fingerprint}")


def _agent(names: list[str]) -> Agent | None:
    """The first registered agent among the candidates (labels firebreak_agent, agent, service)."""
    if not names:
        return None
    found = {a.slug: a for a in Agent.objects.filter(slug__in=names)}
    return next((found[name] for name in names if name in found), None)


@transaction.atomic
def inbound_alerts_receive(*, source: str, integration: str, alerts: list[InboundAlert]) -> list[Outcome]:
    """Raise, repeat, reopen or resolve one Firebreak alert per alert of the batch, all in one transaction.

    A firing alert goes through ``alert_raise`` (deduplicated by the namespaced fingerprint; a resolved one
    opens again), linked to the agent its labels name, if registered; a new one gets the rule of the
    pseudo-detector ``source`` for its agent (pause and declare; without an agent nothing is paused and the
    alert's details say so). A resolved alert resolves the open one as ``Actor.system(source)``; a resolve
    for an alert Firebreak never saw is noted and ignored. What Firebreak acts on is announced on commit
    (``incidents.signals.alert_changed``).
    """
    outcomes: list[Outcome] = []
    actor = Actor.system(source)
    for item in alerts:
        fingerprint = inbound_fingerprint(source=source, integration=integration, fingerprint=item.fingerprint)
        if not item.firing:
            existing = Alert.objects.filter(fingerprint=fingerprint).first()
            if existing is None:
                outcomes.append(Outcome(item.fingerprint, "unknown"))
            elif existing.status == Alert.Status.RESOLVED:
                outcomes.append(Outcome(item.fingerprint, "already_resolved", existing))
            else:
                alert_resolve(alert=existing, actor=actor)
                outcomes.append(Outcome(item.fingerprint, "resolved", existing))
            continue
        agent = _agent(item.agent_names)
        enabled, _, rule = detector_settings(source, agent)
        if not enabled:
            outcomes.append(Outcome(item.fingerprint, "disabled", note=f"the {source} detector is turned off"))
            continue
        was = Alert.objects.filter(fingerprint=fingerprint).values_list("status", flat=True).first()
        details = {**item.details, "rule": rule}
        if item.agent_names and agent is None:
            details["agent_not_registered"] = item.agent_names
        alert, created = alert_raise(
            detector=source,
            agent=agent,
            fingerprint=fingerprint,
            title=item.title,
            suggested_severity=item.severity,
            details=details,
            source=source,
            source_url=item.link,
            integration=integration,
        )
        note = ""
        if created:
            try:
                with transaction.atomic():
                    note = alert_rule_apply(rule=rule, alert=alert)
            except Exception:  # the alert stands even when its rule cannot be applied (as for detectors)
                logger.exception("rule %s failed for inbound alert %s", rule, alert.pk)
                note = f"Rule {rule} could not be applied; see the server log."
            if note:
                alert.details = {**alert.details, "rule_note": note}
                alert.save(update_fields=["details"])
        action = "raised" if created else "reopened" if was == Alert.Status.RESOLVED else "repeated"
        outcomes.append(Outcome(item.fingerprint, action, alert, note))
    return outcomes
