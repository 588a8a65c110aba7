from django.urls import path

from incidents import views_postmortem as views

urlpatterns = [
    path("<int:number>/postmortem/", views.postmortem_detail, name="postmortem"),
    path("<int:number>/postmortem/start/", views.postmortem_start, name="postmortem-start"),
    path("<int:number>/postmortem/preview/", views.postmortem_preview, name="postmortem-preview"),
    path("<int:number>/postmortem/sections/<slug:key>/", views.postmortem_section_save, name="postmortem-section-save"),
    path("<int:number>/postmortem/traces/", views.postmortem_trace_attach, name="postmortem-trace-attach"),
    path(
        "<int:number>/postmortem/traces/<str:trace_id>/detach/",
        views.postmortem_trace_detach,
        name="postmortem-trace-detach",
    ),
    path("<int:number>/postmortem/actions/", views.action_item_add, name="action-item-add"),
    path("<int:number>/postmortem/actions/<int:item_id>/status/", views.action_item_status, name="action-item-status"),
    path("<int:number>/postmortem/status/", views.postmortem_status, name="postmortem-status"),
    path("<int:number>/postmortem/export.md", views.postmortem_export, name="postmortem-export"),
    path("<int:number>/postmortem/print/", views.postmortem_print, name="postmortem-print"),
]
