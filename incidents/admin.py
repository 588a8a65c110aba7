from django.contrib import admin
from django.http import HttpRequest

from incidents.models import (
    ActionItem,
    Alert,
    FailureClass,
    Incident,
    PostMortem,
    PostMortemTemplate,
    RunbookStep,
    SlackUser,
    TimelineEntry,
)


@admin.register(FailureClass)
class FailureClassAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "default_severity", "order")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("number", "title", "severity", "failure_class", "status", "declared_at")
    list_filter = ("severity", "status", "failure_class")
    search_fields = ("title", "summary")
    raw_id_fields = ("traces",)
    filter_horizontal = ("agents",)
    # The lifecycle goes through the incident pages (each change on the timeline); the record is never deleted.
    readonly_fields = ("number", "status", "severity", "declared_at", "declared_by")

    def has_delete_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False


@admin.register(TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    """Read-only: the timeline is append-only (corrections are new entries, on the incident page)."""

    list_display = ("incident", "kind", "actor_label", "created_at")
    list_filter = ("kind",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TimelineEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TimelineEntry | None = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("detector", "title", "agent", "source", "integration", "status", "count", "last_seen")
    list_filter = ("detector", "source", "status")
    raw_id_fields = ("trace", "incident")


@admin.register(PostMortemTemplate)
class PostMortemTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "order")
    prepopulated_fields = {"slug": ("name",)}


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 0


@admin.register(PostMortem)
class PostMortemAdmin(admin.ModelAdmin):
    list_display = ("incident", "status", "due_at", "published_at")
    list_filter = ("status",)
    raw_id_fields = ("attached_traces",)
    inlines = [ActionItemInline]


@admin.register(RunbookStep)
class RunbookStepAdmin(admin.ModelAdmin):
    list_display = ("incident", "phase", "text", "done_at", "done_by")
    list_filter = ("phase",)


@admin.register(SlackUser)
class SlackUserAdmin(admin.ModelAdmin):
    """Who a Slack member acts as in Firebreak (buttons, /firebreak): their role is that user's."""

    list_display = ("slack_user_id", "user", "team_id", "linked_by", "created_at")
    search_fields = ("slack_user_id", "user__username", "user__email")
    raw_id_fields = ("user",)
    readonly_fields = ("linked_by", "created_at")
