from django.urls import path

from agents.keys import api

urlpatterns = [
    path("keys", api.ApiKeyListApi.as_view(), name="api-keys"),
    path("keys/<str:lookup>/revoke", api.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
]
