from django.urls import path

from agents.keys import views

app_name = "keys"
urlpatterns = [
    path("", views.key_list, name="key-list"),
    path("new", views.key_create, name="key-create"),
    path("<str:lookup>/revoke", views.key_revoke, name="key-revoke"),
]
