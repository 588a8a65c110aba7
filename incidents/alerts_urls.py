from django.urls import path

from incidents import views_alerts

urlpatterns = [
    path("alerts/", views_alerts.alert_list, name="alert-list"),
    path("alerts/settings/", views_alerts.detector_settings, name="detector-settings"),
    path("alerts/<int:pk>/acknowledge", views_alerts.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:pk>/resolve", views_alerts.alert_resolve, name="alert-resolve"),
]
