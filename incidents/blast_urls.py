from django.urls import path

from incidents import views_blast

urlpatterns = [
    path("<int:number>/blast-radius/", views_blast.blast_radius_panel, name="blast-radius"),
    path("<int:number>/blast-radius.csv", views_blast.blast_radius_csv, name="blast-radius-csv"),
]
