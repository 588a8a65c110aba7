from django.urls import path

from traces import views

app_name = "traces"
urlpatterns = [
    path("", views.trace_list, name="trace-list"),
    # Before <str:trace_id>/, which would take "sessions" as a trace id.
    path("sessions/<path:session_id>/", views.session_detail, name="session-detail"),
    path("users/<path:user_id>/", views.user_detail, name="user-detail"),
    path("<str:trace_id>/", views.trace_detail, name="trace-detail"),
    path("<str:trace_id>/steps/", views.trace_steps, name="trace-steps"),
    # Before <str:field>/: "value" names the full value of any field stored apart (?field=).
    path("<str:trace_id>/steps/<str:span_id>/value/", views.step_value, name="step-value"),
    path("<str:trace_id>/steps/<str:span_id>/<str:field>/", views.step_text, name="step-text"),
    path("<str:trace_id>/flag", views.trace_flag, name="trace-flag"),
    path("<str:trace_id>/unflag", views.trace_unflag, name="trace-unflag"),
    path("<str:trace_id>/golden", views.trace_golden, name="trace-golden"),
    path("<str:trace_id>/diff/", views.trace_diff, name="trace-diff"),
]
