"""The eventjobs app: registers its system checks, discovers consumers, and guards the
set-up mistakes that would otherwise surface deep inside Django."""

from __future__ import annotations

from types import ModuleType

from django.apps import AppConfig


class EventjobsConfig(AppConfig):
    name = "eventjobs"
    verbose_name = "eventjobs"
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        from eventjobs.guards import install_task_class_guard

        # Before any app's models or tasks are imported: `@task(max_attempts=...)` with a
        # backend that is not eventjobs' then names the setting to fix.
        install_task_class_guard()

    def ready(self) -> None:
        # Django registers its task-backend checks (ours among them) only once
        # django.tasks is imported; import it so they run in every `manage.py check`.
        import django.tasks  # noqa: F401

        from eventjobs.events.registry import autodiscover
        from eventjobs.logs import console_logging_from_environment

        from . import checks  # noqa: F401  (registers the system checks)

        # A worker child spawned by `runworker` logs to the console as its parent does.
        console_logging_from_environment()
        # Register @eventjobs.consumer handlers from every installed app's consumers.py.
        autodiscover()
