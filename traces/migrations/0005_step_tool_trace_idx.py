"""The tool index leads with the tool and carries the trace: "which traces called tool X" (the trace list's tool
filter, the blast radius by tool) is answered from the index alone, without visiting every step of the tool.
Built and dropped concurrently: on a large steps table ingest keeps writing meanwhile."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("traces", "0004_trace_owner_agent"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="step",
            index=models.Index(
                condition=models.Q(("tool_name", ""), _negated=True),
                fields=["tool_name", "trace"],
                name="step_tool_trace_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="step", name="step_tool_idx"),
    ]
