"""Events agents announces to the apps above it.

``gate_changed`` is sent after a gate change has committed, once per agent
affected (a fleet action sends one per agent). kwargs: agent (Agent),
action (AuditAction value), audit_entry (AuditEntry, or None for fleet-wide
rows), actor_label (str), reason (str), incident_number (int | None).
"""

from django.dispatch import Signal

gate_changed = Signal()
