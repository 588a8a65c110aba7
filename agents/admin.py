from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from agents.change_log import ChangeFrozen, change_freeze_refuse
from agents.keys.services import api_key_revoke
from agents.models import Agent, ApiKey, AuditEntry, FleetGate
from agents.services import GATE_SETTINGS, agent_gate_settings_set, agent_register
from core.actors import Actor


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
        # issue 15: changed on the agent page and the API (agents/containment.py)
        "fallback_levels",
        "level",
        "pinned",
        "blocks",
        "created_at",
        "updated_at",
    )

    def save_model(self, request: HttpRequest, obj: Agent, form: "ModelForm[Agent]", change: bool) -> None:
        """Gate settings go through the gate's one door (audit row, new version, published); the rest saves here.

        A new agent is registered through the same service as everywhere else.
        """
        actor = Actor.from_request(request)
        if not change:
            fields = {f: form.cleaned_data[f] for f in form.cleaned_data if f not in ("slug", "name")}
            agent_register(slug=obj.slug, name=obj.name, actor=actor, **fields)
            obj.pk = Agent.objects.get(slug=obj.slug).pk
            return
        gate = {f: form.cleaned_data[f] for f in form.changed_data if f in GATE_SETTINGS}
        rest = [f for f in form.changed_data if f not in GATE_SETTINGS]
        with transaction.atomic():
            if rest:
                obj.save(update_fields=[*rest, "updated_at"])
            if gate:
                current = Agent.objects.get(pk=obj.pk)
                agent_gate_settings_set(agent=current, actor=actor, reason="edited in the admin", **gate)

    def get_form(self, request: HttpRequest, obj: Agent | None = None, change: bool = False, **kwargs: Any) -> Any:
        """An edit made during the change freeze is refused on the form, naming the freeze."""
        form = super().get_form(request, obj, change=change, **kwargs)
        if not change or obj is None:
            return form
        slug = obj.slug

        class FreezeCheckedForm(form):  # type: ignore[valid-type,misc]
            def clean(self) -> Any:
                cleaned = super().clean()
                if self.has_changed():
                    try:
                        change_freeze_refuse(what=f"editing {slug}")
                    except ChangeFrozen as exc:
                        raise ValidationError(exc.messages) from exc
                return cleaned

        return FreezeCheckedForm


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
    """Keys are made on /keys/ or with ``createapikey`` (the raw key is shown once, there: an add form
    here would store a hash of a value nobody saw, a key nobody can use) and revoked here, on /keys/ or
    with ``revokeapikey``: through the service, so an agent key's Redis user and open streams go with it."""

    list_display = (
        "lookup",
        "name",
        "agent",
        "user",
        "integration",
        "scopes",
        "redis_access",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = (
        "lookup",
        "key_hash",
        "agent",
        "user",
        "integration",
        "scopes",
        "redis_access",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    search_fields = ("lookup", "name", "agent__slug", "user__username", "integration")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = Actor.from_request(request)
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key, actor=actor, reason="revoked in the admin")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).")


@admin.register(FleetGate)
class FleetGateAdmin(admin.ModelAdmin):
    list_display = ("stopped", "change_freeze", "version", "updated_at")
    readonly_fields = ("stopped", "stopped_reason", "change_freeze", "change_freeze_reason", "version")
