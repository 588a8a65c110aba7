from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone

from evals.canaries import canary_validate
from evals.models import CanaryPrompt, CanaryRun, EvalCase, EvalRun


@admin.register(EvalCase)
class EvalCaseAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "agent", "incident", "severity", "created_at")
    list_filter = ("severity", "agent")
    raw_id_fields = ("trace", "incident")


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    list_display = ("case", "passed", "version", "source", "ran_at")
    list_filter = ("passed",)
    raw_id_fields = ("case",)


class CanaryPromptForm(forms.ModelForm):
    class Meta:
        model = CanaryPrompt
        fields = (
            "agent",
            "name",
            "input",
            "expectation",
            "expected",
            "interval_minutes",
            "timeout_seconds",
            "enabled",
            "next_run_at",
        )

    def clean(self):
        cleaned = super().clean()
        try:
            canary_validate(
                agent=cleaned.get("agent"),
                name=cleaned.get("name") or "",
                expectation=cleaned.get("expectation") or "",
                expected=cleaned.get("expected") or "",
                interval_minutes=cleaned.get("interval_minutes") or 0,
                timeout_seconds=cleaned.get("timeout_seconds") or 0,
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                target = field if field in self.fields else None
                for message in messages:
                    if target is None or target in cleaned:
                        self.add_error(target, message)
        return cleaned


class CanaryRunInline(admin.TabularInline):
    model = CanaryRun
    fields = ("ran_at", "outcome", "detail", "duration_ms", "output")
    readonly_fields = fields
    ordering = ("-ran_at", "-id")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Recent runs"

    def get_queryset(self, request):
        # Admin inlines cannot slice their queryset, so limit by date: the last week of runs.
        since = timezone.now() - timedelta(days=7)
        return super().get_queryset(request).filter(ran_at__gte=since)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CanaryPrompt)
class CanaryPromptAdmin(admin.ModelAdmin):
    form = CanaryPromptForm
    list_display = ("agent", "name", "expectation", "interval_minutes", "enabled", "next_run_at")
    list_filter = ("enabled", "expectation", "agent")
    search_fields = ("name", "agent__slug")
    list_select_related = ("agent",)
    inlines = (CanaryRunInline,)


@admin.register(CanaryRun)
class CanaryRunAdmin(admin.ModelAdmin):
    list_display = ("canary", "outcome", "ran_at", "duration_ms", "detail")
    list_filter = ("outcome",)
    list_select_related = ("canary__agent",)
    raw_id_fields = ("canary",)
    date_hierarchy = "ran_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
