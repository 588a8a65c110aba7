from django.urls import path

from evals import views

app_name = "evals"
urlpatterns = [
    path("", views.case_list, name="case-list"),
]
