"""/api/v1/integrations/<source>: inbound alerts (included from incidents/api_urls.py)."""

from django.urls import path

from incidents.integrations.inbound import api

urlpatterns = [
    path("integrations/alertmanager", api.AlertmanagerApi.as_view(), name="api-inbound-alertmanager"),
    path("integrations/grafana", api.GrafanaApi.as_view(), name="api-inbound-grafana"),
    path("integrations/datadog", api.DatadogApi.as_view(), name="api-inbound-datadog"),
    path("integrations/webhook", api.WebhookApi.as_view(), name="api-inbound-webhook"),
]
