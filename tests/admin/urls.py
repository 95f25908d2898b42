"""tests.urls plus /metrics, mounted the way docs/admin.md tells projects to."""

from django.urls import path

from eventjobs.metrics import metrics_view
from tests.urls import urlpatterns as base

urlpatterns = [*base, path("metrics/", metrics_view)]
