"""Events that traces announces to the apps above it (incidents connects detection here)."""

from django.dispatch import Signal

# Sent after a batch of spans has committed.
# kwargs: trace_pks (list[int]: traces that gained steps), agent_ids (list[int]), stored (int),
# backfill (bool: past traces imported after the fact, not live traffic), oldest (datetime: the earliest start
# of a span in the batch; rollups of the hours from there on are counted again), created (dict[int,
# list[Span]]: the traces this batch created, each with all its steps, the spans as written; may be empty).
spans_ingested = Signal()

# Sent after a responder's flag on a step has committed (traces.services.trace_flag).
# kwargs: trace (Trace), span_id (str: the flagged step), note (str), actor_label (str).
step_flagged = Signal()
