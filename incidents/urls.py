from django.urls import include, path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("new/", views.incident_new, name="incident-new"),
    path("metrics/", views.metrics, name="metrics"),
    path("<int:number>/", views.incident_detail, name="incident-detail"),
    # Post-mortem pages and blast radius live in their own modules (one owner each).
    path("", include("incidents.postmortem_urls")),
    path("", include("incidents.blast_urls")),
]
