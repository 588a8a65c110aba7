"""Run the scheduled detectors: every active agent x every enabled scheduled detector."""

import logging
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from agents.models import Agent, GateState
from incidents.detection.base import registry
from incidents.detection.engine import detector_settings, findings_handle
from incidents.models import Alert

logger = logging.getLogger(__name__)


def detect_scheduled(*, now: datetime | None = None, agents: Iterable[Agent] | None = None) -> list[Alert]:
    """Run each enabled scheduled detector for each active agent and handle the findings. Returns alerts.

    A detector that raises is logged and skipped so one bad agent or detector does not stop the rest.
    """
    now = now or timezone.now()
    agents = Agent.objects.filter(state=GateState.ACTIVE) if agents is None else agents
    names = sorted(name for name, spec in registry.items() if spec.kind == "scheduled")
    alerts: list[Alert] = []
    for agent in agents:
        if agent.state != GateState.ACTIVE:
            continue
        for name in names:
            enabled, thresholds, _ = detector_settings(name, agent)
            if not enabled:
                continue
            try:
                findings = registry[name].run(agent=agent, settings=thresholds, now=now)
            except Exception:
                logger.exception("scheduled detector %s failed for %s", name, agent.slug)
                continue
            alerts += findings_handle(findings)
    return alerts
