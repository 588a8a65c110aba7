"""Receivers and hooks incidents connects in ready(): they only hand off to services."""

from django.core.exceptions import PermissionDenied

from agents.models import AuditAction
from firebreak.roles import ADMIN, has_role
from incidents.models import Incident, Severity
from incidents.services import OPEN_STATUSES, timeline_gate_record


def on_gate_changed(sender, *, agent, action, audit_entry, actor_label, reason, incident_number, **kwargs):
    timeline_gate_record(
        agent=agent,
        action=action,
        action_label=AuditAction(action).label,
        actor_label=actor_label,
        reason=reason,
        incident_number=incident_number,
    )


def resume_needs_admin_for_open_sev1(agent, actor) -> None:
    """Resuming an agent linked to an open SEV1 needs an admin."""
    open_sev1 = Incident.objects.filter(agents=agent, severity=Severity.SEV1, status__in=OPEN_STATUSES)
    if not has_role(actor, ADMIN) and open_sev1.exists():
        refs = ", ".join(i.ref for i in open_sev1[:3])
        raise PermissionDenied(f"{agent.slug} is linked to open SEV1 {refs}: only an admin can resume it")
