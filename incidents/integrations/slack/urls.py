"""The Slack app's request URLs, under /api/v1/integrations/slack/."""

from django.urls import path

from incidents.integrations.slack import api

urlpatterns = [
    path("events", api.SlackEventsApi.as_view(), name="api-slack-events"),
    path("interactions", api.SlackInteractionsApi.as_view(), name="api-slack-interactions"),
    path("commands", api.SlackCommandsApi.as_view(), name="api-slack-commands"),
]
