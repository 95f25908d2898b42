from django.apps import AppConfig


class EventjobsConfig(AppConfig):
    name = "eventjobs"
    verbose_name = "eventjobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from eventjobs.events.registry import autodiscover

        from . import checks  # noqa: F401  (registers the system checks)

        # Register @eventjobs.consumer handlers from every installed app's consumers.py.
        autodiscover()
