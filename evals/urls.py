from django.urls import path

from evals import views

app_name = "evals"
urlpatterns = [
    path("", views.case_list, name="case-list"),
    path("capture/", views.case_capture, name="case-capture"),
    path("cases/<int:pk>/", views.case_detail, name="case-detail"),
]
