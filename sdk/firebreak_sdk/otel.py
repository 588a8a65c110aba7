"""The OpenTelemetry bridge: an agent that already uses OpenTelemetry exports its spans to Firebreak over OTLP/HTTP.

Needs the ``otel`` extra (``pip install 'firebreak-sdk[otel]'``); the rest of the SDK does not.
"""

from __future__ import annotations

import os
from typing import Any

from .encode import MAX_SPANS_PER_BATCH

__all__ = ["configure_opentelemetry"]

OTLP_TRACES_PATH = "/v1/traces"  # the server's OTLP/HTTP endpoint, under the Firebreak URL


def configure_opentelemetry(
    agent: str,
    *,
    url: str | None = None,
    api_key: str | None = None,
    tracer_provider: Any = None,
    max_queue_size: int = 16_384,
    max_export_batch_size: int = 512,
) -> Any:
    """Export an OpenTelemetry agent's spans to Firebreak's ``POST {url}/v1/traces`` (OTLP/HTTP protobuf).

    Adds a ``BatchSpanProcessor`` with an ``OTLPSpanExporter`` to ``tracer_provider``, else to the global
    SDK ``TracerProvider``, else to a new one (resource ``firebreak.agent=<agent>``, and ``service.name=<agent>``
    unless one is configured) that it installs as the global provider. Returns the provider.

    ``max_queue_size`` defaults to 16,384 because the SDK's default (2,048) drops a burst of spans — an agent
    loop emits hundreds per second — silently. ``url`` and ``api_key`` default to ``FIREBREAK_URL`` and
    ``FIREBREAK_API_KEY``. Needs the ``otel`` extra: ``pip install 'firebreak-sdk[otel]'``.
    """
    try:  # the otel extra is optional: imported on use, so the SDK works without it
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError(
            "configure_opentelemetry needs the packages opentelemetry-sdk and "
            "opentelemetry-exporter-otlp-proto-http: pip install 'firebreak-sdk[otel]' "
            f"(import failed: {exc})"
        ) from exc
    if not agent:
        raise ValueError("agent slug is required")
    url = url or os.environ.get("FIREBREAK_URL") or None
    api_key = api_key or os.environ.get("FIREBREAK_API_KEY") or None
    if not url or not api_key:
        raise ValueError(
            "Firebreak is not configured: set FIREBREAK_URL and FIREBREAK_API_KEY, or pass url= and api_key="
        )
    if not 1 <= max_export_batch_size <= min(max_queue_size, MAX_SPANS_PER_BATCH):
        raise ValueError(f"max_export_batch_size must be from 1 to max_queue_size (and at most {MAX_SPANS_PER_BATCH})")
    provider = tracer_provider
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            resource = Resource.create({"firebreak.agent": agent})
            if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
                resource = resource.merge(Resource({"service.name": agent}))
            provider = TracerProvider(resource=resource)
            trace.set_tracer_provider(provider)
    elif not hasattr(provider, "add_span_processor"):
        raise TypeError(f"tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, not {provider!r}")
    endpoint = f"{url.rstrip('/')}{OTLP_TRACES_PATH}"
    exporter = OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": f"Bearer {api_key}"})
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=max_queue_size, max_export_batch_size=max_export_batch_size)
    )
    return provider
