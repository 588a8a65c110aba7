from django.urls import path

from demo.gamedays import api

urlpatterns = [
    path("gamedays", api.GamedayListApi.as_view(), name="api-gamedays"),
    path("gamedays/<int:pk>", api.GamedayDetailApi.as_view(), name="api-gameday-detail"),
]
