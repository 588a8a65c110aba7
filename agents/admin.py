from django.contrib import admin
from django.http import HttpRequest

from agents.models import Agent, ApiKey, AuditEntry, FleetGate


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "owner", "environment", "state", "budget_frozen", "gate_version")
    list_filter = ("state", "environment", "budget_frozen")
    search_fields = ("slug", "name", "owner")
    # Gate fields change only through the gate services, which audit and publish.
    readonly_fields = (
        "state",
        "state_reason",
        "state_changed_at",
        "state_changed_by",
        "disabled_tools",
        "budget_frozen",
        "gate_version",
        "created_at",
        "updated_at",
    )


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "agent", "actor_label", "incident_number", "reason")
    list_filter = ("action",)
    search_fields = ("agent__slug", "actor_label", "reason")

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("lookup", "name", "agent", "user", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("lookup", "key_hash", "created_at", "last_used_at")
    search_fields = ("lookup", "name", "agent__slug", "user__username")


@admin.register(FleetGate)
class FleetGateAdmin(admin.ModelAdmin):
    list_display = ("stopped", "change_freeze", "version", "updated_at")
    readonly_fields = ("stopped", "stopped_reason", "change_freeze", "change_freeze_reason", "version")
