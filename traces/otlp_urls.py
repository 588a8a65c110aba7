"""``/v1/traces``: OTLP/HTTP's fixed path, outside ``/api/v1/``; the project mounts this module at ``v1/``.

The view is ``traces.api.OtlpTracesApi``, beside the native ingest view.
"""

from django.urls import path

from traces.api import OtlpTracesApi

urlpatterns = [
    path("traces", OtlpTracesApi.as_view(), name="otlp-traces"),
]
