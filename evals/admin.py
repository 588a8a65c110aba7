from django.contrib import admin

from evals.models import EvalCase, EvalRun


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
