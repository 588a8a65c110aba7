"""Build OTLP payloads with the real OpenTelemetry SDK (spans recorded in memory, encoded by the exporter's encoder)."""

import base64
import json

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode


def record(build, *, service_name="support-triage", resource_attrs=None):
    """Run ``build(tracer)`` and return the finished SDK spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name, **(resource_attrs or {})}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("tests"))
    provider.shutdown()
    return exporter.get_finished_spans()


def protobuf(spans) -> bytes:
    return encode_spans(spans).SerializeToString()


def otlp_json(spans) -> bytes:
    """OTLP/JSON as the spec encodes it: camelCase, ids as hex (protobuf's JSON mapping would use base64)."""
    doc = MessageToDict(encode_spans(spans))
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in s:
                        s[key] = base64.b64decode(s[key]).hex()
    return json.dumps(doc).encode()


def genai_agent_run(tracer, *, loop_tool_calls: int = 1, hostile: str = "", error: bool = False):
    """An agent run instrumented with the OpenTelemetry GenAI conventions."""
    with tracer.start_as_current_span("invoke_agent support-triage") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "support-triage")
        root.set_attribute("gen_ai.conversation.id", "conv-42")
        root.set_attribute("user.id", "user-0042")
        root.set_attribute("firebreak.input_class", "order-status")
        root.set_attribute("firebreak.prompt_version", "triage@v14")
        root.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "content": "Where is order 42?"}]))
        with tracer.start_as_current_span("chat gpt-4.1") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.provider.name", "openai")
            llm.set_attribute("gen_ai.request.model", "gpt-4.1")
            llm.set_attribute("gen_ai.response.model", "gpt-4.1-2025-04-14")
            llm.set_attribute("gen_ai.usage.input_tokens", 740)
            llm.set_attribute("gen_ai.usage.output_tokens", 10)
            llm.set_attribute("gen_ai.response.finish_reasons", ["length"])
            llm.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "content": hostile}]))
            llm.set_attribute("custom.team", "support")
        for _ in range(loop_tool_calls):
            with tracer.start_as_current_span("execute_tool lookup_order") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "lookup_order")
                tool.set_attribute("gen_ai.tool.call.id", "call_1")
                tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"order_id": 42, "api_key": "sk-secret"}))
                tool.set_attribute("gen_ai.tool.call.result", json.dumps({"status": "shipped"}))
                if error:
                    tool.set_status(Status(StatusCode.ERROR, "HTTP 500 from orders"))
        root.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "content": "Shipped."}]))


def openinference_run(tracer):
    """The same kind of run instrumented the OpenInference way (flattened messages, tool.* attributes)."""
    with tracer.start_as_current_span("agent") as root:
        root.set_attribute("openinference.span.kind", "AGENT")
        root.set_attribute("session.id", "sess-7")
        root.set_attribute("user.id", "user-7")
        root.set_attribute("input.value", "refund order 9")
        root.set_attribute("output.value", "refunded")
        with tracer.start_as_current_span("ChatCompletion") as llm:
            llm.set_attribute("openinference.span.kind", "LLM")
            llm.set_attribute("llm.model_name", "claude-3-5-sonnet")
            llm.set_attribute("llm.token_count.prompt", 300)
            llm.set_attribute("llm.token_count.completion", 60)
            llm.set_attribute("llm.cost.total", 0.0021)
            llm.set_attribute("llm.input_messages.0.message.role", "system")
            llm.set_attribute("llm.input_messages.0.message.content", "You issue refunds.")
            llm.set_attribute("llm.input_messages.1.message.role", "user")
            llm.set_attribute("llm.input_messages.1.message.content", "refund order 9")
            llm.set_attribute("llm.output_messages.0.message.role", "assistant")
            llm.set_attribute("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "issue_refund")
            llm.set_attribute("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", '{"order": 9}')
        with tracer.start_as_current_span("issue_refund") as tool:
            tool.set_attribute("openinference.span.kind", "TOOL")
            tool.set_attribute("tool.name", "issue_refund")
            tool.set_attribute("tool.parameters", json.dumps({"order": 9, "amount": 20}))
            tool.set_attribute("output.value", "ok")
        with tracer.start_as_current_span("retrieve") as ret:
            ret.set_attribute("openinference.span.kind", "RETRIEVER")
            ret.set_attribute("input.value", "refund policy")
