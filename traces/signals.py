"""Events that traces announces to the apps above it (incidents connects detection here)."""

from django.dispatch import Signal

# Sent after a batch of spans has committed.
# kwargs: trace_pks (list[int]: traces that gained steps), agent_ids (list[int]), stored (int).
spans_ingested = Signal()
