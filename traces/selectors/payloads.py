"""The values of steps kept apart from the step row (``StepPayload``), read back whole."""

from dataclasses import dataclass

from traces.ingest.payloads import APART_KEY, apart_sizes, payload_text
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


def step_value_get(*, trace: Trace, span_id: str, field: str) -> StepValue:
    """The full value of ``field`` (``input``, ``output``, ``tool_arguments`` or ``attributes.<key>``) of the
    step ``span_id`` of ``trace``; raises StepPayload.DoesNotExist when that value is not stored apart."""
    row = StepPayload.objects.only("field", "content_type", "size", "data").get(
        trace=trace, span_id=span_id, field=field
    )
    return StepValue(field=row.field, content_type=row.content_type, size=row.size, text=payload_text(bytes(row.data)))
