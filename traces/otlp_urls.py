from django.urls import path

from traces.otlp import OtlpTracesApi

urlpatterns = [
    path("traces", OtlpTracesApi.as_view(), name="otlp-traces"),
]
