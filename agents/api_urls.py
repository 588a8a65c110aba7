from django.urls import include, path

from agents import api, containment_api

urlpatterns = [
    path("agents", api.AgentListApi.as_view(), name="api-agents"),
    path("agents/<slug:slug>/gate", api.GateApi.as_view(), name="api-gate"),
    path("agents/<slug:slug>/kill", api.AgentKillApi.as_view(), name="api-agent-kill"),
    path("agents/<slug:slug>/pause", api.AgentPauseApi.as_view(), name="api-agent-pause"),
    path("agents/<slug:slug>/resume", api.AgentResumeApi.as_view(), name="api-agent-resume"),
    path("agents/<slug:slug>/tools/<str:tool_name>/disable", api.ToolDisableApi.as_view(), name="api-tool-disable"),
    path("agents/<slug:slug>/tools/<str:tool_name>/enable", api.ToolEnableApi.as_view(), name="api-tool-enable"),
    path("agents/<slug:slug>/budget/freeze", api.BudgetFreezeApi.as_view(), name="api-budget-freeze"),
    path("agents/<slug:slug>/budget/unfreeze", api.BudgetUnfreezeApi.as_view(), name="api-budget-unfreeze"),
    path("agents/<slug:slug>/changes", api.ChangeRecordApi.as_view(), name="api-agent-changes"),
    path("agents/<slug:slug>/degrade", containment_api.DegradeApi.as_view(), name="api-agent-degrade"),
    path("agents/<slug:slug>/rollback", containment_api.RollbackApi.as_view(), name="api-agent-rollback"),
    path("agents/<slug:slug>/unpin", containment_api.UnpinApi.as_view(), name="api-agent-unpin"),
    path("agents/<slug:slug>/block", containment_api.BlockApi.as_view(), name="api-agent-block"),
    path("agents/<slug:slug>/unblock", containment_api.UnblockApi.as_view(), name="api-agent-unblock"),
    path("", include("agents.keys.api_urls")),
    path("fleet", api.FleetApi.as_view(), name="api-fleet"),
    path("fleet/stop", api.FleetStopApi.as_view(), name="api-fleet-stop"),
    path("fleet/resume", api.FleetResumeApi.as_view(), name="api-fleet-resume"),
    path("fleet/change-freeze", api.ChangeFreezeOnApi.as_view(), name="api-change-freeze"),
    path("fleet/change-unfreeze", api.ChangeFreezeOffApi.as_view(), name="api-change-unfreeze"),
]
