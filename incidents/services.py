"""Writes for incidents: declaration, status, timeline, post-mortems."""

from django.db import transaction
from django.db.models import Q

from incidents.models import Incident, IncidentStatus, TimelineEntry, TimelineKind

OPEN_STATUSES = [IncidentStatus.DECLARED, IncidentStatus.INVESTIGATING, IncidentStatus.CONTAINED]


@transaction.atomic
def timeline_gate_record(
    *, agent, action: str, action_label: str, actor_label: str, reason: str, incident_number: int | None
) -> list[TimelineEntry]:
    """Put a gate change on the timeline of every open incident linked to the agent
    (and of the incident the action named, if any)."""
    incidents = (
        Incident.objects.filter(Q(agents=agent) | Q(number=incident_number or -1))
        .filter(status__in=OPEN_STATUSES)
        .distinct()
    )
    body = f"{action_label}: `{agent.slug}` by {actor_label}"
    if reason:
        body += f" — {reason}"
    return [
        TimelineEntry.objects.create(
            incident=incident,
            kind=TimelineKind.GATE,
            body=body,
            actor_label=actor_label,
            data={"agent": agent.slug, "action": action, "reason": reason},
        )
        for incident in incidents
    ]
