"""PagerDuty's API paths, under /api/v1/integrations/pagerduty/."""

from django.urls import path

from incidents.integrations.pagerduty.api import PagerDutyWebhookApi

urlpatterns = [
    path("webhook", PagerDutyWebhookApi.as_view(), name="api-pagerduty-webhook"),
]
