from django.urls import path

from evals import api

urlpatterns = [
    path("evals/cases", api.EvalCaseListApi.as_view(), name="api-eval-cases"),
    path("evals/runs", api.EvalRunsApi.as_view(), name="api-eval-runs"),
]
