"""API paths of the tracker integration (under /api/v1/): an action item's issue, and the three webhooks."""

from django.urls import path

from incidents.integrations.trackers import api

urlpatterns = [
    path(
        "incidents/<int:number>/postmortem/actions/<int:item_id>/issue",
        api.ActionItemIssueApi.as_view(),
        name="api-action-item-issue",
    ),
    path("integrations/jira/webhook", api.JiraWebhookApi.as_view(), name="api-jira-webhook"),
    path("integrations/linear/webhook", api.LinearWebhookApi.as_view(), name="api-linear-webhook"),
    path("integrations/github/webhook", api.GitHubWebhookApi.as_view(), name="api-github-webhook"),
]
