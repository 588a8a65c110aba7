"""Every API path of incidents (under /api/v1/)."""

from django.urls import include, path

from incidents import api
from incidents.blast_radius.api import BlastRadiusApi
from incidents.postmortems.api import PostMortemSectionsApi

urlpatterns = [
    path("incidents", api.IncidentDeclareApi.as_view(), name="api-incidents"),
    path("incidents/<int:number>", api.IncidentDetailApi.as_view(), name="api-incident"),
    path("incidents/<int:number>/close", api.IncidentCloseApi.as_view(), name="api-incident-close"),
    path("incidents/<int:number>/take-command", api.IncidentCommandApi.as_view(), name="api-incident-take-command"),
    path("incidents/<int:number>/failure-class", api.IncidentFailureClassApi.as_view(), name="api-incident-class"),
    path("incidents/<int:number>/blast-radius", BlastRadiusApi.as_view(), name="api-incident-blast-radius"),
    path(
        "incidents/<int:number>/postmortem/sections",
        PostMortemSectionsApi.as_view(),
        name="api-postmortem-sections",
    ),
    path("", include("incidents.integrations.trackers.urls")),
    path("", include("incidents.integrations.inbound.urls")),
    path("integrations/pagerduty/", include("incidents.integrations.pagerduty.urls")),
    path("integrations/slack/", include("incidents.integrations.slack.urls")),
]
