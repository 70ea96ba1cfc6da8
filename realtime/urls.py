from django.urls import path

from realtime import views

urlpatterns = [
    path("metrics", views.prometheus_metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("monitoring/", views.monitoring_page, name="monitoring"),
    path("monitoring/inspector/", views.inspector_page, name="monitoring-inspector"),
]
