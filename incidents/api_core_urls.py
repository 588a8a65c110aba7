from django.urls import path

from incidents import api

urlpatterns = [
    path("incidents", api.IncidentDeclareApi.as_view(), name="api-incidents"),
    path("incidents/<int:number>", api.IncidentDetailApi.as_view(), name="api-incident"),
]
