from django.urls import path

from incidents import blast_api

urlpatterns = [
    path("incidents/<int:number>/blast-radius", blast_api.BlastRadiusApi.as_view(), name="api-incident-blast-radius"),
]
