from django.urls import path

from demo.gamedays import views

app_name = "gamedays"
urlpatterns = [
    path("", views.gameday_list, name="gameday-list"),
    path("<int:pk>/", views.gameday_detail, name="gameday-detail"),
    path("<int:pk>/end/", views.gameday_end, name="gameday-end"),
]
