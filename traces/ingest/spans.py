"""The one span shape every ingest format is turned into before it is written."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias

# A JSON value: what a native batch and an OTLP/JSON export are made of, and what OTLP attribute values
# (AnyValue) become from either encoding. Senders are untrusted: code that needs one shape checks for it.
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None


class IngestError(Exception):
    """Bad input: ``status`` is the HTTP status, ``message`` says what is wrong. Nothing was written."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    name: str
    start: datetime
    agent: str = ""
    parent_span_id: str = ""
    end: datetime | None = None
    kind: str = "other"
    status: str = "unset"
    error_message: str = ""
    session_id: str = ""
    user_id: str = ""
    input_class: str = ""
    model: str = ""
    model_version: str = ""
    prompt_version: str = ""
    agent_name: str = ""
    tool_name: str = ""
    tool_arguments: JsonValue = None
    action_hash: str = ""
    input: str = ""
    output: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)
    finish_reason: str = ""
    trace_status: str = ""
    attributes: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id
