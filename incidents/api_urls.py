from django.urls import include, path

urlpatterns = [
    path("", include("incidents.api_core_urls")),
    path("", include("incidents.blast_api_urls")),
]
