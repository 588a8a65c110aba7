from django.urls import path

from core.sso import views

app_name = "sso"

urlpatterns = [
    path("start/", views.sso_start, name="sso-start"),
    path("callback/", views.sso_callback, name="sso-callback"),
]
