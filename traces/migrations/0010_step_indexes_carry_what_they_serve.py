"""Two indexes carry what their readers need, so those reads never visit the steps:

- the tool index carries the step's start: the blast radius's "steps of tool X in the window" and the trace
  list's tool filter (at 10M steps, a hot tool over 7 days: 398 -> 94 ms to find the matching traces);
- the trace-order index carries the span id, parent and action hash the viewer's skeleton reads of every
  step (a 100,000-step trace: 60 -> 12 ms in PostgreSQL).

A partitioned table's index cannot be built concurrently: this holds writes to the steps table while it
builds (about 15 s at 10M steps here)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("traces", "0009_step_partitions")]

    operations = [
        migrations.RemoveIndex(model_name="step", name="traces_step_trace_i_aa115c_idx"),
        migrations.AddIndex(
            model_name="step",
            index=models.Index(
                fields=["trace", "started_at", "id"],
                include=["span_id", "parent_span_id", "action_hash"],
                name="step_trace_order_idx",
            ),
        ),
        migrations.RemoveIndex(model_name="step", name="step_tool_trace_idx"),
        migrations.AddIndex(
            model_name="step",
            index=models.Index(
                condition=models.Q(("tool_name", ""), _negated=True),
                fields=["tool_name", "trace"],
                include=["started_at"],
                name="step_tool_trace_idx",
            ),
        ),
    ]
