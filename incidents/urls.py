from django.urls import path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("new/", views.incident_new, name="incident-new"),
    path("metrics/", views.metrics, name="metrics"),
    path("<int:number>/", views.incident_detail, name="incident-detail"),
    path("<int:number>/postmortem/", views.postmortem_detail, name="postmortem"),
]
