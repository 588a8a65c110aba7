"""OTLP/HTTP trace export (protobuf and JSON) mapped onto Firebreak's Span.

Agents instrumented with the OpenTelemetry GenAI semantic conventions
(``gen_ai.*``), OpenInference (``openinference.span.kind``, ``llm.*``,
``tool.*``, ``input.value`` …) or OpenLLMetry (``traceloop.*``) work unchanged.
Attributes that are not mapped are kept in ``Step.attributes``.

The owning agent of a span: the key's agent for an agent key; otherwise the
``firebreak.agent`` attribute (span or resource), else the resource's
``service.name``. ``gen_ai.agent.name`` / ``agent.name`` name a sub-agent
within the run (``Step.agent_name``).
"""

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import repeat

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from traces.ingest.spans import IngestError, JsonValue, Span

Attributes = dict[str, JsonValue]  # a span's, a resource's or an event's attributes

# --- attribute names -----------------------------------------------------------------------------

GENAI_OPERATION_KIND = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "llm",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "agent",
    "retrieval": "retrieval",
}
OPENINFERENCE_KIND = {
    "LLM": "llm",
    "EMBEDDING": "llm",
    "TOOL": "tool",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
    "AGENT": "agent",
    "CHAIN": "other",
    "GUARDRAIL": "decision",
    "EVALUATOR": "decision",
}
TRACELOOP_KIND = {"workflow": "agent", "agent": "agent", "tool": "tool", "task": "other"}

TOKENS_IN = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
TOKENS_OUT = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
COST = ("llm.cost.total", "gen_ai.usage.cost", "firebreak.cost")
MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
TOOL_NAME = ("gen_ai.tool.name", "tool.name", "tool_call.function.name")
TOOL_ARGS = ("gen_ai.tool.call.arguments", "tool.parameters", "tool_call.function.arguments")
TOOL_RESULT = ("gen_ai.tool.call.result",)
SESSION = ("gen_ai.conversation.id", "session.id", "traceloop.association.properties.session_id")
USER = ("user.id", "enduser.id", "traceloop.association.properties.user_id")
SUB_AGENT = ("gen_ai.agent.name", "agent.name", "graph.node.name", "graph.node.id")
INPUT = ("gen_ai.input.messages", "input.value", "traceloop.entity.input", "gen_ai.prompt")
OUTPUT = ("gen_ai.output.messages", "output.value", "traceloop.entity.output", "gen_ai.completion")
# Consumed into columns; everything else stays in Step.attributes.
_BULKY_PREFIXES = ("llm.input_messages.", "llm.output_messages.", "gen_ai.prompt.", "gen_ai.completion.")
_CONSUMED = {
    *TOKENS_IN, *TOKENS_OUT, *COST, *TOOL_NAME, *TOOL_ARGS, *TOOL_RESULT, *INPUT, *OUTPUT,
    "gen_ai.response.finish_reasons", "firebreak.agent", "firebreak.input_class", "firebreak.prompt_version",
    "firebreak.model_version", "firebreak.trace_status", "firebreak.user_id", "firebreak.session_id",
}  # fmt: skip
MAX_TEXT = 16 * 1024 * 1024  # the body limit's default: a value over 64 KiB is kept whole, apart (ingest.payloads)


def _first(attrs: Attributes, names: tuple[str, ...]) -> JsonValue:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


# json.dumps(value, ensure_ascii=False, default=str), without building an encoder on every call (json.dumps
# only reuses its own for the default arguments): the same text, for a few µs less per value.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return _ENCODER.encode(value)[:MAX_TEXT]


def _int(value: object) -> int:
    if not isinstance(value, int | float | str):  # None, a list, an object
        return 0
    try:
        n = int(value)
    except (ValueError, OverflowError):  # not a number, NaN, infinity
        return 0
    return min(max(n, 0), 2**31 - 1)


def _cost(value: object) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    if not cost.is_finite() or cost < 0 or cost >= 10**8:
        return Decimal(0)
    return cost.quantize(Decimal("0.000001"))


def _json_or_text(value: JsonValue) -> JsonValue:
    """Tool arguments arrive as a JSON string in most conventions; keep structure when it parses to an object
    or an array, else the value as sent (OpenInference sends a one-argument call's value alone: "9")."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, dict):
        return _unwrapped(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: kept as text
            return {"input": value}
        if isinstance(parsed, dict):
            return _unwrapped(parsed)
        return parsed if isinstance(parsed, list) else {"input": value}
    return {"input": value}


# OpenLLMetry's LangChain instrumentor wraps what a run got and gave in the callback's envelope:
# {"inputs": ..., "tags", "metadata", "kwargs"} or {"input_str", "inputs", ...} and {"outputs": ...} /
# {"output": ..., "kwargs"}. An envelope needs one of its markers (or is {"outputs"} alone), so a tool's own
# arguments named "output" or "inputs" are never taken for one.
_ENVELOPE_KEYS = {"inputs", "input_str", "outputs", "output", "tags", "metadata", "kwargs"}
_ENVELOPE_MARKERS = {"input_str", "tags", "metadata", "kwargs"}
# The first key of an envelope or a LangChain message as their instrumentors write them: other JSON text is
# kept as sent without being parsed.
_ENVELOPE_START = re.compile(r'\{\s*"(?:inputs|input_str|outputs|output|tags|metadata|kwargs|lc|type)"')


def _unwrapped(value: dict[str, JsonValue]) -> JsonValue:
    """A framework's callback envelope around a payload, opened (its ``inputs``, ``outputs`` or ``output``);
    anything else as it is."""
    keys = value.keys()
    if keys <= _ENVELOPE_KEYS and (keys & _ENVELOPE_MARKERS or keys == {"outputs"}):
        for key in ("inputs", "outputs", "output"):
            if key in value:
                inner = value[key]
                return _unwrapped(inner) if isinstance(inner, dict) else inner
    return value


def _message_content(value: JsonValue) -> JsonValue:
    """A LangChain message (serialised ``{"lc": 1, "kwargs": {"content"}}`` or dumped ``{"type": "ai",
    "data": {"content"}}``) as its content; anything else as it is."""
    if not isinstance(value, dict):
        return value
    kwargs, data = value.get("kwargs"), value.get("data")
    if value.get("lc") == 1 and isinstance(kwargs, dict) and isinstance(kwargs.get("content"), str):
        return kwargs["content"]
    if isinstance(value.get("type"), str) and isinstance(data, dict) and isinstance(data.get("content"), str):
        return data["content"]
    return value


def _readable(value: JsonValue) -> str:
    """A span's input or output as text: a framework's envelope opened (``_unwrapped``) and a LangChain
    message read as its content (``_message_content``); other text as it was sent."""
    parsed: JsonValue = value
    if isinstance(value, str) and _ENVELOPE_START.match(value):  # parse only what may be one: ingest's hot path
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return _text(value)
    if not isinstance(parsed, dict):
        return _text(value)
    opened = _message_content(_unwrapped(parsed))
    return _text(value) if opened is parsed else _text(opened)


def _flattened_messages(attrs: Attributes, prefix: str) -> str:
    """OpenInference / OpenLLMetry flattened messages (``llm.input_messages.0.message.content``) as text."""
    rows: dict[str, Attributes] = {}
    for key, value in attrs.items():
        if key.startswith(prefix):
            index, _, field = key[len(prefix) :].partition(".")
            rows.setdefault(index, {})[field] = value
    if not rows:
        return ""
    lines = []
    for index in sorted(rows, key=lambda i: int(i) if i.isdigit() else 0):
        row = rows[index]
        role = row.get("message.role") or row.get("role") or ""
        content = row.get("message.content") or row.get("content") or ""
        lines.append(f"{role}: {content}" if role else _text(content))
    return "\n".join(lines)


def _genai_messages(value: JsonValue) -> str:
    """The GenAI conventions' ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (a JSON array of
    ``{"role", "parts": [{"type": "text", "content"}, ...]}``) as "role: text" lines; "" when it is not that."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return ""
    if not isinstance(value, list) or not value:
        return ""
    lines = []
    for message in value:
        if not isinstance(message, dict):
            return ""
        parts = message.get("parts")
        if not isinstance(parts, list):
            return ""
        texts = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                content = part.get("content")
                texts.append(content[:MAX_TEXT] if isinstance(content, str) else _text(content))
            elif kind == "tool_call":
                texts.append(f"[tool call {_text(part.get('name'))}({_text(part.get('arguments'))})]")
            elif kind == "tool_call_response":
                texts.append(f"[tool result {_text(part.get('response'))}]")
        role = _text(message.get("role"))
        lines.append(f"{role}: {' '.join(filter(None, texts))}" if role else " ".join(texts))
    return "\n".join(lines)[:MAX_TEXT]


def _sub_agent(attrs: Attributes) -> str:
    """The sub-agent or graph node a span belongs to: the conventions' names, else LangGraph's node from
    OpenInference's ``metadata`` (a JSON object with ``langgraph_node``)."""
    name = _first(attrs, SUB_AGENT)
    if name:
        return _text(name)[:200]
    metadata = attrs.get("metadata")
    if isinstance(metadata, str) and "langgraph_node" in metadata:
        try:
            metadata = json.loads(metadata)
        except (ValueError, RecursionError):
            return ""
    if isinstance(metadata, dict) and metadata.get("langgraph_node"):
        return _text(metadata["langgraph_node"])[:200]
    return ""


def _flattened_tool_call(attrs: Attributes) -> tuple[str, JsonValue]:
    """The first tool call an LLM span asked for (OpenInference), as (name, arguments)."""
    name = attrs.get("llm.output_messages.0.message.tool_calls.0.tool_call.function.name")
    if not name:
        return "", None
    args = attrs.get("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments")
    return str(name), _json_or_text(args)


def _finish_reason(attrs: Attributes) -> str:
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, list) and reasons:
        return str(reasons[0])[:50]
    if isinstance(reasons, str) and reasons:
        return reasons[:50]
    for key in ("llm.output_messages.0.message.finish_reason", "gen_ai.completion.0.finish_reason"):
        if attrs.get(key):
            return str(attrs[key])[:50]
    return ""


def _kind(attrs: Attributes) -> str:
    # Each value is checked to be a string first: an array (unhashable) used to fail the whole request.
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op in GENAI_OPERATION_KIND:
        return GENAI_OPERATION_KIND[op]
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str) and oi.upper() in OPENINFERENCE_KIND:
        return OPENINFERENCE_KIND[oi.upper()]
    tl = attrs.get("traceloop.span.kind")
    if isinstance(tl, str) and tl in TRACELOOP_KIND:
        return TRACELOOP_KIND[tl]
    if attrs.get("llm.request.type") or attrs.get("gen_ai.system") or attrs.get("gen_ai.provider.name"):
        return "llm"
    if _first(attrs, TOOL_NAME):
        return "tool"
    return "other"


def _owner(attrs: Attributes, resource: Attributes, service_name_is_agent: bool) -> str:
    owner = attrs.get("firebreak.agent") or resource.get("firebreak.agent")
    if not owner and service_name_is_agent:
        owner = resource.get("service.name")
    return str(owner or "")[:63]


def _time(nanos: int, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(nanos / 1e9, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise IngestError(f"{where}: time out of range") from None


def map_span(
    *, trace_id: str, span_id: str, parent_span_id: str, name: str, start_ns: int, end_ns: int,
    status_code: int, status_message: str, attrs: Attributes, resource: Attributes, events: list[Attributes],
    where: str,
    service_name_is_agent: bool = True,
) -> Span:  # fmt: skip
    """One OTLP span (ids already hex, attributes already plain Python values) as a Firebreak Span."""
    if len(trace_id) != 32 or trace_id == "0" * 32:
        raise IngestError(f"{where}.traceId: must be 16 bytes (32 hex characters), not all zero")
    if len(span_id) != 16 or span_id == "0" * 16:
        raise IngestError(f"{where}.spanId: must be 8 bytes (16 hex characters), not all zero")
    if parent_span_id and len(parent_span_id) != 16:
        raise IngestError(f"{where}.parentSpanId: must be 8 bytes (16 hex characters)")
    if not start_ns:
        raise IngestError(f"{where}.startTimeUnixNano: required")
    start = _time(start_ns, where)
    end = _time(end_ns, where) if end_ns else None
    if end is not None and end < start:
        raise IngestError(f"{where}.endTimeUnixNano: before startTimeUnixNano")

    kind = _kind(attrs)
    tool_name = _text(_first(attrs, TOOL_NAME))[:200]
    tool_args = _json_or_text(_first(attrs, TOOL_ARGS))
    if kind == "tool" and tool_args is None and attrs.get("input.value") is not None:
        tool_args = _json_or_text(attrs.get("input.value"))  # OpenInference tool spans
    if kind == "tool" and not tool_name and attrs.get("traceloop.entity.name"):
        tool_name = str(attrs["traceloop.entity.name"])[:200]
    if (
        kind == "llm"
        and not tool_name
        and "llm.output_messages.0.message.tool_calls.0.tool_call.function.name" in attrs
    ):
        # An LLM span that asked for a tool: keep the request visible, but it is not the tool call itself.
        requested, requested_args = _flattened_tool_call(attrs)
        if requested:
            attrs = {**attrs, "firebreak.requested_tool": requested,
                     "firebreak.requested_arguments": _text(requested_args)}  # fmt: skip

    # Flattened message attributes are rare on tool and agent spans: look for them once.
    flat = any(map(str.startswith, attrs, repeat(_BULKY_PREFIXES)))  # a C loop: no generator frame per key
    span_input = span_output = ""
    if kind == "llm":
        # A model call reads as its messages whichever instrumentor sent it: OpenInference's flattened
        # messages, OpenLLMetry's gen_ai.prompt/completion.N, the GenAI conventions' message arrays, before
        # input.value / output.value, which OpenInference fills with the framework's raw run payload
        # (LangChain's {"generations": [[...]]}).
        if flat:
            span_input = _flattened_messages(attrs, "llm.input_messages.") or _flattened_messages(
                attrs, "gen_ai.prompt."
            )
            span_output = _flattened_messages(attrs, "llm.output_messages.") or _flattened_messages(
                attrs, "gen_ai.completion."
            )
        span_input = span_input or _genai_messages(attrs.get("gen_ai.input.messages"))
        span_output = span_output or _genai_messages(attrs.get("gen_ai.output.messages"))
    span_input = span_input or _readable(_first(attrs, INPUT))
    if not span_input and flat:
        span_input = _flattened_messages(attrs, "llm.input_messages.") or _flattened_messages(attrs, "gen_ai.prompt.")
    span_output = span_output or _readable(_first(attrs, TOOL_RESULT) or _first(attrs, OUTPUT))
    if not span_output and flat:
        span_output = _flattened_messages(attrs, "llm.output_messages.") or _flattened_messages(
            attrs, "gen_ai.completion."
        )
    if kind == "other" and attrs.get("openinference.span.kind") == "CHAIN" and not parent_span_id:
        kind = "agent"  # a framework's top-level run (LangGraph's "LangGraph" chain) is the agent's run

    error_message = status_message if status_code == 2 else ""
    if status_code == 2 and not error_message:
        for event in events:
            if event.get("name") == "exception":
                error_message = _text(event.get("exception.message") or event.get("exception.type"))[:10_000]
                break

    trace_status = attrs.get("firebreak.trace_status") or ""
    if not isinstance(trace_status, str) or trace_status not in ("", "ok", "error", "killed"):
        raise IngestError(f"{where}: firebreak.trace_status must be ok, error or killed")
    if flat:
        raw = {k: v for k, v in attrs.items() if k not in _CONSUMED and not k.startswith(_BULKY_PREFIXES)}
    else:
        raw = {k: v for k, v in attrs.items() if k not in _CONSUMED}
    if events:
        raw["events"] = [*events[:50]]

    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=(name or "span")[:500],
        start=start,
        end=end,
        agent=_owner(attrs, resource, service_name_is_agent),
        kind=kind,
        status="error" if status_code == 2 else "ok" if status_code == 1 else "unset",
        error_message=error_message,
        session_id=_text(_first(attrs, SESSION) or attrs.get("firebreak.session_id"))[:200],
        user_id=_text(_first(attrs, USER) or attrs.get("firebreak.user_id"))[:200],
        input_class=_text(attrs.get("firebreak.input_class") or resource.get("firebreak.input_class"))[:200],
        model=_text(_first(attrs, MODEL))[:200],
        model_version=_text(attrs.get("firebreak.model_version") or resource.get("firebreak.model_version"))[:200],
        prompt_version=_text(attrs.get("firebreak.prompt_version") or resource.get("firebreak.prompt_version"))[:200],
        agent_name=_sub_agent(attrs),
        tool_name=tool_name,
        tool_arguments=tool_args,
        input=span_input,
        output=span_output,
        tokens_in=_int(_first(attrs, TOKENS_IN)),
        tokens_out=_int(_first(attrs, TOKENS_OUT)),
        cost=_cost(_first(attrs, COST)),
        finish_reason=_finish_reason(attrs),
        trace_status=trace_status,
        attributes=raw,
    )


# --- protobuf ------------------------------------------------------------------------------------


def _pb_value(v: AnyValue) -> JsonValue:
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return None


def _pb_attrs(kvs: Iterable[KeyValue]) -> Attributes:
    attrs: Attributes = {}
    for kv in kvs:
        v = kv.value
        # Most attributes are strings: read them without a call to _pb_value (this runs for every attribute).
        attrs[kv.key] = v.string_value if v.WhichOneof("value") == "string_value" else _pb_value(v)
    return attrs


def parse_protobuf(body: bytes, *, max_spans: int, service_name_is_agent: bool = True) -> list[Span]:
    """Spans of a protobuf export. ``service_name_is_agent``: without an agent key, the resource's
    ``service.name`` names the owning agent when ``firebreak.agent`` is absent."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError:
        raise IngestError("body is not a valid OTLP ExportTraceServiceRequest (protobuf)") from None
    total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if total > max_spans:
        raise IngestError(f"{total} spans, at most {max_spans} per request", status=413)
    spans = []
    for ri, rs in enumerate(request.resource_spans):
        resource = _pb_attrs(rs.resource.attributes)
        for si, ss in enumerate(rs.scope_spans):
            for pi, s in enumerate(ss.spans):
                events = [{"name": e.name, **_pb_attrs(e.attributes)} for e in s.events] if s.events else []
                spans.append(
                    map_span(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        name=s.name,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        status_code=s.status.code,
                        status_message=s.status.message,
                        attrs=_pb_attrs(s.attributes),
                        resource=resource,
                        events=events,
                        where=f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]",
                        service_name_is_agent=service_name_is_agent,
                    )
                )
    return spans


# --- JSON (OTLP/JSON: ids as hex, int64 as strings) ---------------------------------------------
# The body is untrusted JSON: each level is checked to be the object or array OTLP says it is, and
# refused with its path if not (a shape nobody sends used to end in a 500, not a 400).

_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _json_object(value: JsonValue, where: str) -> dict[str, JsonValue]:
    """An object of the export; absent (or empty, null) is an empty one."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise IngestError(f"{where}: must be an object")
    return value


def _json_array(value: JsonValue, where: str) -> list[JsonValue]:
    """An array of the export; absent (or empty, null) is an empty one."""
    if not value:
        return []
    if not isinstance(value, list):
        raise IngestError(f"{where}: must be an array")
    return value


def _json_values(container: JsonValue) -> list[JsonValue]:
    """The ``values`` of an attribute's arrayValue or kvlistValue; none when it has no such array."""
    values = container.get("values") if isinstance(container, dict) else None
    return values if isinstance(values, list) else []


def _json_value(v: JsonValue) -> JsonValue:
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return _int_or_none(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [_json_value(x) for x in _json_values(v["arrayValue"])]
    if "kvlistValue" in v:
        return _json_attrs(_json_values(v["kvlistValue"]))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _int_or_none(value: JsonValue) -> int | None:
    if not isinstance(value, int | float | str):  # None, an array, an object
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):  # not a number, NaN, infinity
        return None


def _json_attrs(kvs: JsonValue) -> Attributes:
    """Key-value pairs as a dict; a pair without a string ``key`` is skipped."""
    if not isinstance(kvs, list):
        return {}
    attrs: Attributes = {}
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(key := kv.get("key"), str):
            attrs[key] = _json_value(kv.get("value"))
    return attrs


def _hex_id(value: JsonValue, where: str) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise IngestError(f"{where}: must be a hex string")
    value = value.lower()
    try:
        bytes.fromhex(value)
    except ValueError:
        raise IngestError(f"{where}: must be hex (OTLP/JSON encodes ids as hex, not base64)") from None
    return value


def _json_span_count(resource_spans: list[JsonValue]) -> int:
    """Spans in the export, counted before anything is parsed (malformed levels count none)."""
    total = 0
    for rs in resource_spans:
        scopes = rs.get("scopeSpans") if isinstance(rs, dict) else None
        for ss in scopes if isinstance(scopes, list) else []:
            spans = ss.get("spans") if isinstance(ss, dict) else None
            total += len(spans) if isinstance(spans, list) else 0
    return total


def parse_json(body: bytes, *, max_spans: int, service_name_is_agent: bool = True) -> list[Span]:
    """Spans of an OTLP/JSON export (see parse_protobuf)."""
    try:
        payload: JsonValue = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
        raise IngestError(f"body is not valid JSON: {exc}") from None
    resource_spans = payload.get("resourceSpans", []) if isinstance(payload, dict) else None
    if not isinstance(resource_spans, list):
        raise IngestError('body must be an OTLP ExportTraceServiceRequest: {"resourceSpans": [...]}')
    total = _json_span_count(resource_spans)
    if total > max_spans:
        raise IngestError(f"{total} spans, at most {max_spans} per request", status=413)
    spans = []
    for ri, rs in enumerate(resource_spans):
        if not isinstance(rs, dict):
            raise IngestError(f"resourceSpans[{ri}]: must be an object")
        resource = _json_attrs(_json_object(rs.get("resource"), f"resourceSpans[{ri}].resource").get("attributes"))
        for si, ss in enumerate(_json_array(rs.get("scopeSpans"), f"resourceSpans[{ri}].scopeSpans")):
            scope = _json_object(ss, f"resourceSpans[{ri}].scopeSpans[{si}]")
            for pi, s in enumerate(_json_array(scope.get("spans"), f"resourceSpans[{ri}].scopeSpans[{si}].spans")):
                where = f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]"
                if not isinstance(s, dict):
                    raise IngestError(f"{where}: must be an object")
                status = _json_object(s.get("status"), f"{where}.status")
                code = status.get("code", 0)
                if isinstance(code, str):
                    code = _STATUS_CODES.get(code, code)
                raw_events = s.get("events")
                events: list[Attributes] = [
                    {"name": e.get("name", ""), **_json_attrs(e.get("attributes"))}
                    for e in (raw_events if isinstance(raw_events, list) else []) if isinstance(e, dict)
                ]  # fmt: skip
                spans.append(
                    map_span(
                        trace_id=_hex_id(s.get("traceId"), f"{where}.traceId"),
                        span_id=_hex_id(s.get("spanId"), f"{where}.spanId"),
                        parent_span_id=_hex_id(s.get("parentSpanId"), f"{where}.parentSpanId"),
                        name=str(s.get("name") or ""),
                        start_ns=_int_or_none(s.get("startTimeUnixNano")) or 0,
                        end_ns=_int_or_none(s.get("endTimeUnixNano")) or 0,
                        status_code=_int_or_none(code) or 0,
                        status_message=str(status.get("message") or ""),
                        attrs=_json_attrs(s.get("attributes")),
                        resource=resource,
                        events=events,
                        where=where,
                        service_name_is_agent=service_name_is_agent,
                    )
                )
    return spans
