"""The ingest API, both doors in: native JSON (``POST /api/v1/ingest``) and OTLP/HTTP (``POST /v1/traces``).

Each view checks the body (``read_body``: type and size), hands it to its format's parser in
``traces.ingest.parse`` and the spans to ``traces.services.trace_ingest``; bad input answers 4xx with
``{"error": "..."}`` and nothing written. While PostgreSQL is down a valid batch is spooled
(``traces.spool``) and acknowledged; 503 with ``Retry-After`` only when the spool cannot take it.
"""

import json
import logging
import zlib
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from agents.permissions import CanIngest, IsResponder, IsViewer, is_agent_key
from core.actors import Actor
from core.api import ERRORS, page_response, paginated, service_error
from core.api import error as api_error
from core.throttling import IngestRateThrottle
from traces import services
from traces.ingest.normalize import span_scrub
from traces.ingest.parse.native import parse_native
from traces.ingest.parse.otlp import parse_json, parse_protobuf
from traces.ingest.spans import IngestError, Span
from traces.models import Step, Trace, TraceStatus
from traces.selectors import payloads, runs, trajectory
from traces.selectors.cursor import Cursor
from traces.selectors.trajectory import STEP_PAGE_STEPS
from traces.services import trace_ingest
from traces.spool import SPANS, SpooledBatch, SpoolFull, drainer_ensure, spans_encode, spool_put
from traces.views import WINDOWS, TraceFilterForm

logger = logging.getLogger(__name__)


class NativeSpanSerializer(serializers.Serializer):
    """Documentation of one span of the native batch (validation is traces.ingest.parse.native)."""

    trace_id = serializers.RegexField(r"^[0-9a-f]{32}$", help_text="32 lowercase hex characters")
    span_id = serializers.RegexField(r"^[0-9a-f]{16}$", help_text="16 lowercase hex characters")
    parent_span_id = serializers.RegexField(
        r"^[0-9a-f]{16}$", required=False, allow_null=True, help_text="absent or null for the root span of the run"
    )
    name = serializers.CharField(max_length=500)
    start_time = serializers.CharField(help_text="ISO 8601 with offset, or epoch seconds")
    end_time = serializers.CharField(required=False, allow_null=True)
    agent = serializers.CharField(required=False, help_text="agent slug; defaults to the key's agent")
    kind = serializers.ChoiceField(["llm", "tool", "retrieval", "decision", "agent", "other"], default="other")
    status = serializers.ChoiceField(["unset", "ok", "error"], default="unset")
    error_message = serializers.CharField(required=False)
    trace_status = serializers.ChoiceField(
        ["ok", "error", "killed"],
        required=False,
        help_text="set on a span to mark the whole run, e.g. killed by the gate",
    )
    session_id = serializers.CharField(required=False)
    user_id = serializers.CharField(required=False, help_text="the end user the run served")
    input_class = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    model_version = serializers.CharField(required=False)
    prompt_version = serializers.CharField(required=False)
    agent_name = serializers.CharField(required=False, help_text="sub-agent that produced the span")
    tool_name = serializers.CharField(required=False)
    tool_arguments = serializers.JSONField(required=False, help_text="object or array; sensitive keys redacted")
    input = serializers.CharField(required=False)
    output = serializers.CharField(required=False)
    tokens_in = serializers.IntegerField(min_value=0, required=False)
    tokens_out = serializers.IntegerField(min_value=0, required=False)
    cost = serializers.DecimalField(max_digits=14, decimal_places=6, min_value=0, required=False, help_text="USD")
    finish_reason = serializers.CharField(required=False)
    attributes = serializers.DictField(required=False, help_text="anything else, kept as raw attributes")


class NativeBatchSerializer(serializers.Serializer):
    spans = NativeSpanSerializer(many=True)


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    traces = serializers.IntegerField()


PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ERROR = inline_serializer("IngestError", {"error": serializers.CharField()})


def error(message: str, status: int) -> Response:
    return Response({"error": message}, status=status)


def read_body(request, *, allowed_types: tuple[str, ...]) -> bytes:
    """The raw body after the size and type checks every ingest endpoint shares."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type not in allowed_types:
        raise IngestError(f"Content-Type must be {' or '.join(allowed_types)}, not {content_type or 'missing'!r}", 415)
    limit = settings.FIREBREAK_INGEST_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise IngestError("Content-Length is not a number") from None
    if length > limit:
        raise IngestError(f"body of {length} bytes is over the limit of {limit}", 413)
    # Read the stream ourselves: Django's request.body would refuse anything over DATA_UPLOAD_MAX_MEMORY_SIZE
    # (2.5 MiB, meant for forms) with an HTML 400 before this one limit, the documented one, applies.
    raw: HttpRequest = getattr(request, "_request", request)
    body = raw.read(limit + 1)
    if len(body) > limit:
        raise IngestError(f"body is over the limit of {limit} bytes", 413)
    return body


SPOOL_RETRY_AFTER = 5  # seconds an exporter should wait when even the spool cannot take its batch


def _ingest_or_spool(spans: list[Span], key_agent: Agent | None) -> dict[str, Any]:
    """Store the batch; while PostgreSQL cannot be reached, spool it instead (durably, drained in order later).

    What is spooled is the spans scrubbed, as they would be stored: no secret reaches the disk.

    The answer is 200 either way — the batch is kept — and says which happened. Raises IngestError (a
    4xx: nothing kept) or SpoolFull (a 503 with Retry-After: nothing kept, the exporter retries).
    """
    drainer_ensure()
    try:
        return trace_ingest(spans=spans, key_agent=key_agent).as_dict()
    except (OperationalError, InterfaceError):
        logger.warning("PostgreSQL unreachable: spooling a batch of %d spans", len(spans))
    agent = (key_agent.slug, key_agent.pk) if key_agent is not None else (None, None)
    body = spans_encode([span_scrub(span) for span in spans])
    spool_put(SpooledBatch(format=SPANS, body=body, agent_slug=agent[0], agent_pk=agent[1]))
    return {"received": len(spans), "stored": 0, "duplicates": 0, "traces": 0, "spooled": len(spans)}


def _unavailable(message: str) -> Response:
    response = error(f"{message}; retry shortly", 503)
    response["Retry-After"] = str(SPOOL_RETRY_AFTER)
    return response


# --- native JSON: POST /api/v1/ingest ------------------------------------------------------------------


class IngestApi(APIView):
    permission_classes = [CanIngest]
    throttle_classes = [IngestRateThrottle]  # per key, 429 + Retry-After; open while Redis is down

    @extend_schema(
        operation_id="ingest_native",
        summary="Send a batch of spans (native JSON)",
        description="Validated whole before anything is written; one transaction; idempotent on "
        "(agent, trace_id, span_id): a span sent twice is stored once. With an agent's key every span is "
        "that agent's (a span naming another agent is refused with 403); spans reusing another agent's "
        "trace id make this agent's own trajectory of it.",
        request=NativeBatchSerializer,
        responses={
            200: IngestResultSerializer,
            400: OpenApiResponse(ERROR, description="malformed batch; the error names the field"),
            401: OpenApiResponse(ERROR),
            403: OpenApiResponse(ERROR),
            413: OpenApiResponse(ERROR, description="body or batch too large"),
            415: OpenApiResponse(ERROR, description="not application/json"),
        },
        tags=["ingest"],
    )
    def post(self, request):
        try:
            body = read_body(request, allowed_types=(JSON,))
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
                raise IngestError(f"body is not valid JSON: {exc}") from None
            spans = parse_native(payload, max_spans=settings.FIREBREAK_INGEST_MAX_SPANS)
            key_agent = request.user.agent if is_agent_key(request) else None
            result = _ingest_or_spool(spans, key_agent)
        except IngestError as exc:
            return error(exc.message, exc.status)
        except SpoolFull as exc:
            return _unavailable(str(exc))
        return Response(result)


# --- OTLP/HTTP: POST /v1/traces, protobuf or JSON, optionally gzip-compressed -----------------------------


class _RawParser(BaseParser):
    """Let the view read the raw body itself (size checks and gzip come first)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return None


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise IngestError(f"Content-Encoding {encoding!r} is not supported (use gzip or none)", 415)
    limit = settings.FIREBREAK_INGEST_MAX_BYTES
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise IngestError("body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise IngestError(f"decompressed body is over the limit of {limit} bytes", 413)
    return out


def _json_response(payload: dict, status: int) -> HttpResponse:
    return HttpResponse(json.dumps(payload), status=status, content_type=JSON)


class _IgnoreAccept(BaseContentNegotiation):
    """Exporters may send any Accept header; errors are always JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class OtlpTracesApi(APIView):
    permission_classes = [CanIngest]
    throttle_classes = [IngestRateThrottle]  # per key, 429 + Retry-After (exporters honour it)
    parser_classes = [_RawParser]
    content_negotiation_class = _IgnoreAccept

    @extend_schema(
        operation_id="otlp_traces",
        summary="OTLP/HTTP trace export",
        description="Point any OpenTelemetry exporter here (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=<base>/v1/traces`, "
        "header `Authorization=Bearer <key>`). `application/x-protobuf` or `application/json`, gzip accepted. "
        "Maps the GenAI conventions (`gen_ai.*`), OpenInference and OpenLLMetry. Validated whole before "
        'anything is written; idempotent on (agent, trace id, span id). Errors answer JSON `{"error": "..."}`.',
        request={PROTOBUF: bytes, JSON: inline_serializer("OtlpJson", {"resourceSpans": serializers.ListField()})},
        responses={
            200: OpenApiResponse(description="ExportTraceServiceResponse (protobuf or JSON, as sent)"),
            400: OpenApiResponse(description="malformed; the error names the span and field"),
            401: OpenApiResponse(description="no or unknown key"),
            403: OpenApiResponse(description="key may not send spans (for this agent)"),
            413: OpenApiResponse(description="too large"),
            415: OpenApiResponse(description="unsupported content type or encoding"),
        },
        tags=["ingest"],
    )
    def post(self, request):
        try:
            body = read_body(request, allowed_types=(PROTOBUF, JSON))
            body = _decompress(body, request.headers.get("Content-Encoding", "").strip().lower())
            content_type = request.content_type.split(";")[0].strip().lower()
            max_spans = settings.FIREBREAK_INGEST_MAX_SPANS
            key_agent = request.user.agent if is_agent_key(request) else None
            parse = parse_protobuf if content_type == PROTOBUF else parse_json
            spans = parse(body, max_spans=max_spans, service_name_is_agent=key_agent is None)
            if spans:
                _ingest_or_spool(spans, key_agent)
        except IngestError as exc:
            return _json_response({"error": exc.message}, exc.status)
        except SpoolFull as exc:
            response = _json_response({"error": f"{exc}; retry shortly"}, 503)
            response["Retry-After"] = str(SPOOL_RETRY_AFTER)
            return response
        if content_type == PROTOBUF:
            return HttpResponse(ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)
        return _json_response({}, 200)


# --- the trace viewer's reads ----------------------------------------------------------------------
# The trace list's filters (the same form as /traces/, plus the session) and one trajectory with its
# steps a page at a time, from the same selectors as the pages. Step content is untrusted model and tool
# output, returned as stored text: a client shows it escaped.


class TraceApiFilterForm(TraceFilterForm):
    session_id = forms.CharField(required=False, max_length=200)

    def selector_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().selector_kwargs()
        kwargs["session_id"] = (self.cleaned_data.get("session_id") or "").strip()
        return kwargs


class TraceSummarySerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    agent = serializers.CharField(source="agent.slug")
    status = serializers.CharField()
    session_id = serializers.CharField(allow_blank=True)
    user_id = serializers.CharField(allow_blank=True)
    input_class = serializers.CharField(allow_blank=True)
    model_version = serializers.CharField(allow_blank=True)
    prompt_version = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    step_count = serializers.IntegerField()
    tool_call_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    flagged_span_id = serializers.CharField(allow_blank=True)
    flag_note = serializers.CharField(allow_blank=True)


class TraceStepSerializer(serializers.Serializer):
    span_id = serializers.CharField()
    parent_span_id = serializers.CharField(allow_blank=True)
    kind = serializers.CharField()
    name = serializers.CharField()
    agent_name = serializers.CharField(allow_blank=True)
    tool_name = serializers.CharField(allow_blank=True)
    tool_arguments = serializers.JSONField(allow_null=True)
    model = serializers.CharField(allow_blank=True)
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    finish_reason = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    error_message = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    output = serializers.CharField(source="output_head", allow_blank=True, help_text="the first 2,000 characters")
    output_length = serializers.IntegerField(source="output_len")
    input_length = serializers.IntegerField(source="input_len")
    stored_apart = serializers.SerializerMethodField(
        help_text="{field: size in bytes} of the values over 64 KiB kept whole apart from the step (the step "
        "holds their first 2,000 characters); the viewer serves them at /traces/<trace_id>/steps/<span_id>/value/"
    )

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_stored_apart(self, step: Step) -> dict[str, int]:
        return payloads.apart_sizes(getattr(step, "apart", None))


class TraceDetailSerializer(TraceSummarySerializer):
    root_input = serializers.CharField(allow_blank=True)
    root_output = serializers.CharField(allow_blank=True)
    flagged_by = serializers.CharField(allow_blank=True)
    flagged_at = serializers.DateTimeField(allow_null=True)
    steps = serializers.SerializerMethodField(help_text="one page of steps in time order")
    next_cursor = serializers.SerializerMethodField(help_text="pass as ?cursor= for the next steps; null: last")

    @extend_schema_field(TraceStepSerializer(many=True))
    def get_steps(self, trace: Trace):
        return TraceStepSerializer(self.context["window"].steps, many=True).data

    def get_next_cursor(self, trace: Trace) -> str | None:
        window: trajectory.StepWindow = self.context["window"]
        return window.last_cursor if window.more_after else None


TRACE_LIST_PARAMETERS = [
    OpenApiParameter("agent", str, description="agent slug"),
    OpenApiParameter("status", str, enum=TraceStatus.values),
    OpenApiParameter("user_id", str),
    OpenApiParameter("session_id", str),
    OpenApiParameter("model_version", str),
    OpenApiParameter("prompt_version", str),
    OpenApiParameter("input_class", str),
    OpenApiParameter("tool", str, description="a tool some step called"),
    OpenApiParameter("window", str, enum=list(WINDOWS), description="started in the last …"),
    OpenApiParameter("since", OpenApiTypes.DATETIME),
    OpenApiParameter("until", OpenApiTypes.DATETIME),
    OpenApiParameter("flagged", str, enum=["yes", "no"]),
    OpenApiParameter("cursor", str, description="next_cursor of the page before"),
    OpenApiParameter("limit", int, description="1–200, default 50"),
]


def _form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {name: [str(e) for e in errors] for name, errors in form.errors.items()}


class TraceListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="traces_list",
        summary="List traces, newest first, with the trace list's filters (paginated)",
        parameters=TRACE_LIST_PARAMETERS,
        responses={200: paginated(TraceSummarySerializer, "TracePage"), 400: ERRORS[400]},
        tags=["traces"],
    )
    def get(self, request: Request) -> Response:
        form = TraceApiFilterForm(request.query_params)
        if not form.is_valid():
            return api_error("invalid input", 400, _form_errors(form))
        kwargs = form.selector_kwargs()
        if form.cleaned_data.get("cursor") and kwargs["cursor"] is None:
            return api_error("invalid input", 400, {"cursor": ["Not a cursor of this list; start without one."]})
        page = runs.trace_list(**kwargs)
        return page_response(TraceSummarySerializer(page.traces, many=True).data, page.next_cursor)


class TraceStepsQuerySerializer(serializers.Serializer):
    agent = serializers.SlugField(required=False, allow_blank=True, max_length=63, help_text="whose trajectory")
    cursor = serializers.CharField(required=False, allow_blank=True, max_length=100)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=STEP_PAGE_STEPS, default=STEP_PAGE_STEPS)


TRACE_ID_MAX = Trace._meta.get_field("trace_id").max_length or 32


class TraceDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="traces_read",
        summary="Read a trajectory with its steps in time order (paginated steps)",
        parameters=[TraceStepsQuerySerializer],
        responses={200: TraceDetailSerializer, 400: ERRORS[400], 404: OpenApiResponse(description="unknown trace")},
        tags=["traces"],
    )
    def get(self, request: Request, trace_id: str) -> Response:
        query = TraceStepsQuerySerializer(data=request.query_params)
        if not query.is_valid():
            return api_error("invalid input", 400, query.errors)
        data = query.validated_data
        cursor = Cursor.decode(data["cursor"]) if data.get("cursor") else None
        if data.get("cursor") and cursor is None:
            return api_error("invalid input", 400, {"cursor": ["Not a cursor of this trace; start without one."]})
        try:
            if len(trace_id) > TRACE_ID_MAX:  # longer than any stored id: no such trace
                raise Trace.DoesNotExist
            trace = runs.trace_get(trace_id=trace_id, agent=data.get("agent", ""))
        except Trace.DoesNotExist:
            return api_error(
                f"no trace {trace_id[:32]!r}" + (f" of agent {data['agent']!r}" if data.get("agent") else ""), 404
            )
        window = trajectory.step_window_after(trace=trace, cursor=cursor, limit=data["limit"])
        return Response(TraceDetailSerializer(trace, context={"window": window}).data)


class TraceFlagSerializer(serializers.Serializer):
    span_id = serializers.CharField(max_length=64, help_text="the step where the run went off the rails")
    note = serializers.CharField(max_length=5000, help_text="one sentence: what went wrong there")


class TraceFlagApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="traces_flag",
        summary="Flag the step where a run went off the rails (responder); replaces an earlier flag",
        parameters=[OpenApiParameter("agent", str, description="whose trajectory of a multi-agent trace id")],
        request=TraceFlagSerializer,
        responses={200: TraceSummarySerializer, **ERRORS},
        tags=["traces"],
    )
    def post(self, request: Request, trace_id: str) -> Response:
        agent = str(request.query_params.get("agent", ""))[:63]
        try:
            if len(trace_id) > TRACE_ID_MAX:
                raise Trace.DoesNotExist
            trace = runs.trace_get(trace_id=trace_id, agent=agent)
        except Trace.DoesNotExist:
            return api_error(f"no trace {trace_id[:32]!r}", 404)
        data = TraceFlagSerializer(data=request.data)
        if not data.is_valid():
            return api_error("invalid input", 400, data.errors)
        try:
            services.trace_flag(trace=trace, actor=Actor.from_request(request), **data.validated_data)
        except ValidationError as exc:
            return service_error(exc)
        return Response(TraceSummarySerializer(trace).data)
