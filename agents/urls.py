from django.urls import path

from agents import containment_views, views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list, name="agent-list"),
    path("fleet/stop", views.fleet_stop, name="fleet-stop"),
    path("fleet/resume", views.fleet_resume, name="fleet-resume"),
    path("fleet/change-freeze", views.change_freeze, name="change-freeze"),
    path("audit/<int:pk>/reason", views.audit_reason, name="audit-reason"),
    path("<slug:slug>/", views.agent_detail, name="agent-detail"),
    path("<slug:slug>/kill", views.agent_kill, name="agent-kill"),
    path("<slug:slug>/pause", views.agent_pause, name="agent-pause"),
    path("<slug:slug>/resume", views.agent_resume, name="agent-resume"),
    path("<slug:slug>/tools/<str:tool>/<str:action>", views.tool_toggle, name="tool-toggle"),
    path("<slug:slug>/budget/freeze", views.budget_freeze, name="budget-freeze"),
    path("<slug:slug>/budget/unfreeze", views.budget_unfreeze, name="budget-unfreeze"),
    path("<slug:slug>/budget/caps", views.budget_caps, name="budget-caps"),
    path("<slug:slug>/changes", views.change_record, name="change-record"),
    path("<slug:slug>/degrade", containment_views.agent_degrade, name="agent-degrade"),
    path("<slug:slug>/levels", containment_views.agent_levels, name="agent-levels"),
    path("<slug:slug>/rollback", containment_views.agent_rollback, name="agent-rollback"),
    path("<slug:slug>/unpin", containment_views.agent_unpin, name="agent-unpin"),
    path("<slug:slug>/block", containment_views.agent_block, name="agent-block"),
    path("<slug:slug>/unblock", containment_views.agent_unblock, name="agent-unblock"),
    path("<slug:slug>/sessions/block", containment_views.sessions_block, name="sessions-block"),
]
