"""Incident notifications through Apprise (chat, e-mail, webhooks: whatever FIREBREAK_NOTIFY_URLS names).

Called from a Celery task (incidents.notifications.tasks), never in the responder's request.
"""

import logging

import apprise
from django.conf import settings

from incidents.models import Incident

logger = logging.getLogger(__name__)

EVENTS = {"declared": "declared", "severity": "severity changed", "contained": "contained", "resolved": "resolved"}


class NotificationFailed(Exception):
    """At least one target did not accept the message (the task retries)."""


def notification_message(*, incident: Incident, event: str, detail: str = "") -> tuple[str, str]:
    """The title and body of the notification for ``event`` on ``incident``."""
    label = EVENTS.get(event, event)
    if detail:
        label = f"{label} ({detail})"
    title = f"{incident.ref} [{incident.severity}] {incident.title} — {label}"
    url = f"{settings.FIREBREAK_BASE_URL.rstrip('/')}/incidents/{incident.number}/"
    fc_name = incident.failure_class.name if incident.failure_class else "Not yet classified"
    lines = [f"{fc_name} · {incident.get_status_display()}"]
    if incident.commander is not None:  # no query when commander_id is empty
        lines.append(f"Commander: {incident.commander.get_username()}")
    lines.append(url)
    return title, "\n".join(lines)


def notification_send(*, incident_id: int, event: str, detail: str = "") -> bool:
    """Send the notification to every URL of FIREBREAK_NOTIFY_URLS.

    Returns False when no URLs are configured (nothing sent) or the incident
    is gone, True when every target accepted it. Raises NotificationFailed
    when a target did not (an unreachable server, a refused message).
    """
    urls = list(settings.FIREBREAK_NOTIFY_URLS or [])
    if not urls:
        return False
    incident = Incident.objects.select_related("failure_class", "commander").filter(pk=incident_id).first()
    if incident is None:
        logger.warning("notification %s: incident %s no longer exists", event, incident_id)
        return False
    targets = apprise.Apprise()
    for url in urls:
        if not targets.add(url):
            logger.error("notification: FIREBREAK_NOTIFY_URLS holds a URL Apprise does not understand")
    if not len(targets):
        raise NotificationFailed("no usable notification URL")
    title, body = notification_message(incident=incident, event=event, detail=detail)
    if not targets.notify(title=title, body=body):
        raise NotificationFailed(f"a target refused or did not answer: {title}")
    logger.info("notification sent: %s", title)
    return True
