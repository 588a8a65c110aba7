"""Runs detectors and acts on their findings: alert (deduplicated), then the detector's rule."""

import logging
from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models import Q

from agents.containment import agent_degrade_step
from agents.models import Agent, GateState
from agents.services import agent_pause
from core.actors import Actor
from incidents.alerts.services import alert_raise, incident_declare_from_alert
from incidents.detection.base import Finding, Rule, Thresholds, registry
from incidents.integrations.pagerduty.services import alert_page
from incidents.models import Alert, DetectorSetting
from traces.models import Trace

logger = logging.getLogger(__name__)


def detector_settings(name: str, agent: Agent | None) -> tuple[bool, Thresholds, str]:
    """(enabled, thresholds, rule) for one detector and agent: defaults < all-agents row < agent row.
    ``agent`` None (an alert from outside naming no agent): the all-agents row only."""
    rows = DetectorSetting.objects.filter(detector=name, agent__isnull=True)
    if agent is not None:
        rows = rows | DetectorSetting.objects.filter(detector=name, agent=agent)
    return _settings_from(name, rows)


def detector_settings_batch(agents: Iterable[Agent]) -> Callable[[str, Agent], tuple[bool, Thresholds, str]]:
    """``detector_settings`` for every detector and any of ``agents``, from one query: the streaming runner
    asks for each detector and agent of every batch, and a query each was a good part of the worker's time."""
    ids = {agent.pk for agent in agents}
    rows = list(DetectorSetting.objects.filter(Q(agent__isnull=True) | Q(agent_id__in=ids)))

    def settings_of(name: str, agent: Agent) -> tuple[bool, Thresholds, str]:
        return _settings_from(name, [r for r in rows if r.detector == name and r.agent_id in (None, agent.pk)])

    return settings_of


def _settings_from(name: str, rows: Iterable[DetectorSetting]) -> tuple[bool, Thresholds, str]:
    spec = registry[name]
    enabled, thresholds, rule = True, dict(spec.defaults), spec.rule
    for row in sorted(rows, key=lambda r: r.agent_id is not None):  # global first, then the agent's own
        enabled = row.enabled
        thresholds.update(row.thresholds or {})
        rule = row.rule or rule
    return enabled, thresholds, rule


def findings_handle(findings: list[Finding]) -> list[Alert]:
    """Raise or bump one alert per finding and apply its rule. Returns the alerts.

    Pausing goes through the gate service (audit row, publish, timeline); declaring uses the
    incident service with the trace attached and the offending step flagged.
    """
    alerts: list[Alert] = []
    for finding in findings:
        agent = Agent.objects.get(pk=finding.agent_id)
        _, _, rule = detector_settings(finding.detector, agent)
        # The alert and its rule commit together: a worker killed between them leaves neither, and the
        # batch delivered again raises the alert afresh and applies the rule (at least once, never half).
        with transaction.atomic():
            trace = Trace.objects.filter(pk=finding.trace_id).first() if finding.trace_id else None
            alert, created = alert_raise(
                detector=finding.detector,
                agent=agent,
                fingerprint=finding.fingerprint,
                title=finding.title,
                trace=trace,
                span_id=finding.span_id,
                suggested_severity=finding.severity,
                failure_class_slug=finding.failure_class or registry[finding.detector].failure_class,
                details=finding.details,
            )
            if created:
                try:
                    with transaction.atomic():
                        _apply_rule(rule, alert, agent, trace, finding)
                except Exception:
                    logger.exception("rule %s failed for alert %s", rule, alert.pk)
        alerts.append(alert)
    return alerts


def _apply_rule(rule: str, alert: Alert, agent: Agent, trace: Trace | None, finding: Finding) -> None:
    alert_rule_apply(rule=rule, alert=alert, trace=trace, span_id=finding.span_id)


def alert_rule_apply(*, rule: str, alert: Alert, trace: Trace | None = None, span_id: str = "") -> str:
    """Apply a detector's rule to its new alert: pause the alert's agent (pause, declare), step it one level
    down its fallback ladder (degrade), declare an incident (declare). Returns what it did not do and why
    ("" when it did all): an alert from outside that names no agent pauses nothing, and its incident is
    declared without an agent."""
    agent, note = alert.agent, ""
    if rule == Rule.PAGE:  # notify (the alert itself) + page: the delivery commits with the alert, sent after
        alert_page(alert=alert)
    if rule in (Rule.PAUSE, Rule.DECLARE):
        if agent is None:
            note = f"Rule {rule}: no registered agent is named on this alert, so no agent was paused."
        elif agent.state == GateState.ACTIVE:
            agent_pause(agent=agent, actor=Actor.detector(alert.detector), reason=f"Alert #{alert.pk}: {alert.title}")
    if rule == Rule.DEGRADE:
        if agent is None:
            note = f"Rule {rule}: no registered agent is named on this alert, so no agent was degraded."
        elif (
            agent_degrade_step(
                agent=agent, actor=Actor.detector(alert.detector), reason=f"Alert #{alert.pk}: {alert.title}"
            )
            is None
        ):
            note = f"Rule {rule}: {agent.slug} is already at the lowest level of its fallback ladder."
    if rule == Rule.DECLARE:
        incident_declare_from_alert(alert=alert, trace=trace, span_id=span_id)
    return note
