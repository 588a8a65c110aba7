"""Signal receivers that keep PagerDuty in step (connected in ``IncidentsConfig.ready()``).

Each records a pending delivery and enqueues its sending (the decision is made here, in the order the
changes committed); none raises, and none acts on a change PagerDuty itself made (actor "pagerduty"),
nor on history replayed at a past time (``core.clock`` set: the demo's past incidents page nobody).
"""

import logging
from typing import Any

from core import clock
from incidents.detection.base import registry
from incidents.detection.engine import detector_settings
from incidents.integrations.pagerduty import services
from incidents.models import Alert, TimelineEntry, TimelineKind

logger = logging.getLogger(__name__)


def on_alert_changed(sender: Any, alert_id: int, event: str, actor_label: str = "", **kwargs: Any) -> None:
    if actor_label == services.ACTOR_LABEL or clock.is_set() or not services.paging_enabled() or event == "raised":
        return  # raised: the detection engine pages in the alert's own transaction (rule "page")
    try:
        rule = ""
        if event == "reopened":
            alert = Alert.objects.select_related("agent").filter(pk=alert_id).first()
            if alert is None or alert.detector not in registry:
                return
            rule = detector_settings(alert.detector, alert.agent)[2]
        services.page_alert_changed(alert_id=alert_id, event=event, rule=rule)
    except Exception:
        logger.exception("PagerDuty: could not queue the page for alert %s (%s)", alert_id, event)


def on_incident_changed(
    sender: Any, incident_id: int, event: str, detail: str = "", actor_label: str = "", **kwargs: Any
) -> None:
    if actor_label == services.ACTOR_LABEL or clock.is_set() or not services.paging_enabled():
        return
    try:
        services.page_incident_changed(incident_id=incident_id, event=event, detail=detail)
    except Exception:
        logger.exception("PagerDuty: could not queue the page for incident %s (%s)", incident_id, event)


def on_timeline_recorded(
    sender: Any, entry_id: int, incident_id: int, kind: str, actor_label: str = "", **kwargs: Any
) -> None:
    """Taking command leaves a status entry with ``commander_after``: that acknowledges the page."""
    if kind != TimelineKind.STATUS or actor_label == services.ACTOR_LABEL or clock.is_set():
        return
    if not services.paging_enabled():
        return
    try:
        data = TimelineEntry.objects.filter(pk=entry_id).values_list("data", flat=True).first()
        if isinstance(data, dict) and data.get("commander_after"):
            services.page_commander_taken(incident_id=incident_id)
    except Exception:
        logger.exception("PagerDuty: could not queue the acknowledge for incident %s", incident_id)
