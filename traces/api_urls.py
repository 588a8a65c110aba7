from django.urls import path

from traces import api

urlpatterns = [
    path("ingest", api.IngestApi.as_view(), name="api-ingest"),
    path("traces", api.TraceListApi.as_view(), name="api-traces"),
    path("traces/<str:trace_id>", api.TraceDetailApi.as_view(), name="api-trace"),
    path("traces/<str:trace_id>/flag", api.TraceFlagApi.as_view(), name="api-trace-flag"),
]
