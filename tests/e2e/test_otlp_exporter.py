"""A plain OpenTelemetry SDK, pointed at /v1/traces, produces a trajectory that reads right in the viewer."""

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agents.keys.services import api_key_create
from traces.models import Trace
from traces.tests.otel_helpers import genai_agent_run


def test_the_real_exporter_over_http_with_gzip(live_server, make_agent, make_client, viewer):
    agent = make_agent("support-triage", allowed_tools=["lookup_order"])
    key = api_key_create(agent=agent, scopes=["ingest"])[1]
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "triage-prod"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=10_000))
    genai_agent_run(provider.get_tracer("agent"), loop_tool_calls=3, hostile="<script>window.__x=1</script>")
    assert provider.force_flush(10_000)
    provider.shutdown()

    trace = Trace.objects.get()
    assert trace.agent == agent
    assert (trace.step_count, trace.tool_call_count, trace.status) == (5, 3, "ok")
    page = make_client(viewer).get(f"/traces/{trace.trace_id}/").content.decode()
    assert "lookup_order" in page
    assert "<script>window.__x=1</script>" not in page
