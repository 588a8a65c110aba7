from django.urls import include, path

from incidents import views

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
    path("", include("incidents.alerts_urls")),
]
