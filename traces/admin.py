from django.contrib import admin

from traces.models import Step, Trace


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = ("trace_id", "agent", "status", "user_id", "step_count", "cost", "started_at", "is_golden")
    list_filter = ("status", "is_golden", "agent")
    search_fields = ("trace_id", "session_id", "user_id")
    raw_id_fields = ("agent",)
    show_full_result_count = False


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    list_display = ("span_id", "trace", "kind", "name", "tool_name", "status", "started_at")
    list_filter = ("kind", "status")
    search_fields = ("span_id", "tool_name")
    raw_id_fields = ("trace",)
    show_full_result_count = False
