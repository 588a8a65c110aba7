"""Every API path of incidents (under /api/v1/)."""

from django.urls import include, path

from incidents import api
from incidents.alerts import api as alerts_api
from incidents.blast_radius.api import BlastRadiusApi
from incidents.postmortems import api as pm_api
from incidents.postmortems.api import PostMortemApi, PostMortemExportApi, PostMortemSectionsApi

urlpatterns = [
    path("alerts", alerts_api.AlertListApi.as_view(), name="api-alerts"),
    path("alerts/<int:pk>", alerts_api.AlertDetailApi.as_view(), name="api-alert"),
    path("alerts/<int:pk>/acknowledge", alerts_api.AlertAcknowledgeApi.as_view(), name="api-alert-acknowledge"),
    path("alerts/<int:pk>/resolve", alerts_api.AlertResolveApi.as_view(), name="api-alert-resolve"),
    path("incidents", api.IncidentListApi.as_view(), name="api-incidents"),
    path("incidents/<int:number>", api.IncidentDetailApi.as_view(), name="api-incident"),
    path("incidents/<int:number>/status", api.IncidentStatusApi.as_view(), name="api-incident-status"),
    path("incidents/<int:number>/severity", api.IncidentSeverityApi.as_view(), name="api-incident-severity"),
    path("incidents/<int:number>/commander", api.IncidentCommanderApi.as_view(), name="api-incident-commander"),
    path("incidents/<int:number>/notes", api.IncidentNotesApi.as_view(), name="api-incident-notes"),
    path("incidents/<int:number>/timeline", api.IncidentTimelineApi.as_view(), name="api-incident-timeline"),
    path("incidents/<int:number>/runbook/<int:step_id>", api.RunbookTickApi.as_view(), name="api-runbook-tick"),
    path("incidents/<int:number>/close", api.IncidentCloseApi.as_view(), name="api-incident-close"),
    path("incidents/<int:number>/take-command", api.IncidentCommandApi.as_view(), name="api-incident-take-command"),
    path("incidents/<int:number>/failure-class", api.IncidentFailureClassApi.as_view(), name="api-incident-class"),
    path("incidents/<int:number>/blast-radius", BlastRadiusApi.as_view(), name="api-incident-blast-radius"),
    path("incidents/<int:number>/postmortem", PostMortemApi.as_view(), name="api-postmortem"),
    path("incidents/<int:number>/postmortem/export.md", PostMortemExportApi.as_view(), name="api-postmortem-export"),
    path(
        "incidents/<int:number>/postmortem/sections",
        PostMortemSectionsApi.as_view(),
        name="api-postmortem-sections",
    ),
    path("incidents/<int:number>/postmortem/start", pm_api.PostMortemStartApi.as_view(), name="api-postmortem-start"),
    path(
        "incidents/<int:number>/postmortem/status", pm_api.PostMortemStatusApi.as_view(), name="api-postmortem-status"
    ),
    path(
        "incidents/<int:number>/postmortem/traces", pm_api.PostMortemTracesApi.as_view(), name="api-postmortem-traces"
    ),
    path("incidents/<int:number>/postmortem/actions", pm_api.ActionItemsApi.as_view(), name="api-action-items"),
    path(
        "incidents/<int:number>/postmortem/actions/<int:item_id>/status",
        pm_api.ActionItemStatusApi.as_view(),
        name="api-action-item-status",
    ),
    path("", include("incidents.integrations.trackers.urls")),
    path("", include("incidents.integrations.inbound.urls")),
    path("integrations/pagerduty/", include("incidents.integrations.pagerduty.urls")),
    path("integrations/slack/", include("incidents.integrations.slack.urls")),
]
