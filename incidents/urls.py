"""Every page of incidents, its post-mortems, blast radius and alerts (under /incidents/)."""

from django.urls import path

from incidents import views
from incidents.alerts import views as alert_views
from incidents.blast_radius import views as blast_views
from incidents.notifications import views as notification_views
from incidents.postmortems import views as postmortem_views

app_name = "incidents"
urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("new/", views.incident_new, name="incident-new"),
    path("metrics/", postmortem_views.metrics, name="metrics"),
    path("<int:number>/", views.incident_detail, name="incident-detail"),
    path("<int:number>/status", views.incident_status, name="incident-status"),
    path("<int:number>/severity", views.incident_severity, name="incident-severity"),
    path("<int:number>/close", views.incident_close, name="incident-close"),
    path("<int:number>/command", views.incident_command_take, name="incident-command-take"),
    path("<int:number>/failure-class", views.incident_failure_class, name="incident-failure-class"),
    path("<int:number>/notes", views.note_add, name="note-add"),
    path("<int:number>/runbook/<int:step_id>", views.runbook_tick, name="runbook-tick"),
    # Post-mortems.
    path("<int:number>/postmortem/", postmortem_views.postmortem_detail, name="postmortem"),
    path("<int:number>/postmortem/start/", postmortem_views.postmortem_start, name="postmortem-start"),
    path("<int:number>/postmortem/preview/", postmortem_views.postmortem_preview, name="postmortem-preview"),
    path("<int:number>/postmortem/save/", postmortem_views.postmortem_save, name="postmortem-save"),
    path("<int:number>/postmortem/traces/", postmortem_views.postmortem_trace_attach, name="postmortem-trace-attach"),
    path(
        "<int:number>/postmortem/traces/<str:trace_id>/detach/",
        postmortem_views.postmortem_trace_detach,
        name="postmortem-trace-detach",
    ),
    path("<int:number>/postmortem/actions/", postmortem_views.action_item_add, name="action-item-add"),
    path(
        "<int:number>/postmortem/actions/<int:item_id>/status/",
        postmortem_views.action_item_status,
        name="action-item-status",
    ),
    path(
        "<int:number>/postmortem/actions/<int:item_id>/issue/",
        postmortem_views.action_item_issue,
        name="action-item-issue",
    ),
    path("<int:number>/postmortem/status/", postmortem_views.postmortem_status, name="postmortem-status"),
    path("<int:number>/postmortem/export.md", postmortem_views.postmortem_export, name="postmortem-export"),
    path("<int:number>/postmortem/print/", postmortem_views.postmortem_print, name="postmortem-print"),
    # Blast radius.
    path("<int:number>/blast-radius/", blast_views.blast_radius_panel, name="blast-radius"),
    path("<int:number>/blast-radius.csv", blast_views.blast_radius_csv, name="blast-radius-csv"),
    # Alerts.
    path("alerts/", alert_views.alert_list, name="alert-list"),
    path("agents/<slug:slug>/deliveries/", notification_views.agent_deliveries, name="agent-deliveries"),
    path("alerts/new/", alert_views.alert_new, name="alert-new"),
    path("alerts/settings/", alert_views.detector_settings, name="detector-settings"),
    path("alerts/<int:pk>/acknowledge", alert_views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:pk>/resolve", alert_views.alert_resolve, name="alert-resolve"),
]
