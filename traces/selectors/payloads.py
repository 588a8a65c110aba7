"""The values of steps kept apart from the step row (``StepPayload``), read back whole."""

from dataclasses import dataclass

from django.db.models.fields.json import KeyTransform

from traces.ingest.payloads import APART_KEY, apart_sizes, payload_text

__all__ = [
    "StepValue",
    "apart_sizes",
    "step_apart_annotation",
    "step_apart_fields",
    "step_value_get",
    "trace_root_input",
]
from traces.models import Step, StepPayload, Trace


@dataclass(frozen=True)
class StepValue:
    """One value of a step stored apart, decompressed: ``text`` as it was sent (JSON text for arguments)."""

    field: str
    content_type: str
    size: int  # bytes, UTF-8
    text: str


def step_apart_fields(step: Step) -> dict[str, int]:
    """The fields of ``step`` whose full value is stored apart, with their size in bytes (``{}`` for none)."""
    return apart_sizes((step.attributes or {}).get(APART_KEY))


def step_apart_annotation() -> KeyTransform:
    """An annotation for a Step query: ``firebreak.apart`` of each step (read it with ``apart_sizes``)."""
    return KeyTransform(APART_KEY, "attributes")


def step_value_get(*, trace: Trace, span_id: str, field: str) -> StepValue:
    """The full value of ``field`` (``input``, ``output``, ``tool_arguments`` or ``attributes.<key>``) of the
    step ``span_id`` of ``trace``; raises StepPayload.DoesNotExist when that value is not stored apart."""
    row = StepPayload.objects.only("field", "content_type", "size", "data").get(
        trace=trace, span_id=span_id, field=field
    )
    return StepValue(field=row.field, content_type=row.content_type, size=row.size, text=payload_text(bytes(row.data)))


def trace_root_input(*, trace: Trace) -> str:
    """The run's input whole: ``Trace.root_input`` holds only a preview when the root span's input was stored
    apart (over 64 KiB), and then this reads it back from the payload."""
    root = (
        Step.objects.filter(trace=trace, parent_span_id="")
        .only("span_id", "attributes")
        .order_by("-started_at", "-id")
        .first()
    )
    if root is None or "input" not in step_apart_fields(root):
        return trace.root_input
    try:
        return step_value_get(trace=trace, span_id=root.span_id, field="input").text
    except StepPayload.DoesNotExist:
        return trace.root_input
