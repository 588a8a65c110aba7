"""``POST /v1/traces``: OTLP/HTTP trace export, protobuf or JSON, optionally gzip-compressed."""

import json
import zlib

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.views import APIView

from agents.permissions import CanIngest, is_agent_key
from traces.api import read_body
from traces.ingest.otlp import parse_json, parse_protobuf
from traces.ingest.spans import IngestError
from traces.services import trace_ingest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


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
    parser_classes = [_RawParser]
    content_negotiation_class = _IgnoreAccept

    @extend_schema(
        operation_id="otlp_traces",
        summary="OTLP/HTTP trace export",
        description="Point any OpenTelemetry exporter here (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=<base>/v1/traces`, "
        "header `Authorization=Bearer <key>`). `application/x-protobuf` or `application/json`, gzip accepted. "
        "Maps the GenAI conventions (`gen_ai.*`), OpenInference and OpenLLMetry. Validated whole before "
        'anything is written; idempotent on (trace id, span id). Errors answer JSON `{"error": "..."}`.',
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
                trace_ingest(spans=spans, key_agent=key_agent)
        except IngestError as exc:
            return _json_response({"error": exc.message}, exc.status)
        if content_type == PROTOBUF:
            return HttpResponse(ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)
        return _json_response({}, 200)
