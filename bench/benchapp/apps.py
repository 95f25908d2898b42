from django.apps import AppConfig
from django.conf import settings


class BenchAppConfig(AppConfig):
    name = "benchapp"

    def ready(self):
        # eventjobs discovers consumers.py itself; importing it here too is harmless
        # (module import is cached) and makes the bench independent of discovery.
        if settings.BENCH_SYSTEM == "eventjobs":
            from . import consumers  # noqa: F401
