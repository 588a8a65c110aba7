from django.urls import path

from incidents import views

urlpatterns = [
    path("<int:number>/postmortem/", views.postmortem_detail, name="postmortem"),
]
