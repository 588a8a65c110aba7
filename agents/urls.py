from django.urls import path

from agents import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list, name="agent-list"),
    path("<slug:slug>/", views.agent_detail, name="agent-detail"),
]
