from django.urls import include, path

from incidents import views
from incidents.alerts import views as alert_views

app_name = "incidents"
urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("new/", views.incident_new, name="incident-new"),
    path("metrics/", views.metrics, name="metrics"),
    path("<int:number>/", views.incident_detail, name="incident-detail"),
    path("<int:number>/status", views.incident_status, name="incident-status"),
    path("<int:number>/severity", views.incident_severity, name="incident-severity"),
    path("<int:number>/close", views.incident_close, name="incident-close"),
    path("<int:number>/notes", views.note_add, name="note-add"),
    path("<int:number>/runbook/<int:step_id>", views.runbook_tick, name="runbook-tick"),
    # Post-mortem pages and blast radius live in their own modules (one owner each).
    path("", include("incidents.postmortem_urls")),
    path("", include("incidents.blast_urls")),
    # Alerts.
    path("alerts/", alert_views.alert_list, name="alert-list"),
    path("alerts/settings/", alert_views.detector_settings, name="detector-settings"),
    path("alerts/<int:pk>/acknowledge", alert_views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:pk>/resolve", alert_views.alert_resolve, name="alert-resolve"),
]
