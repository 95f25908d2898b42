"""manage.py demo: create the demo database, enqueue sample jobs, run a worker, show results."""

from __future__ import annotations

import psycopg
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.tasks import default_task_backend

from demo_blog.blog.tasks import always_broken, flaky_sum, rebuild_sitemap, send_welcome_email


class Command(BaseCommand):
    help = "Run the eventjobs demo: migrate, enqueue sample jobs, run a worker until done."

    def handle(self, *args, **options):
        self._create_database()
        call_command("migrate", verbosity=0)
        results = [send_welcome_email.enqueue(f"reader{i}@example.com") for i in range(3)]
        results += [rebuild_sitemap.enqueue(), flaky_sum.enqueue(2, 3), always_broken.enqueue()]
        self.stdout.write(f"Enqueued {len(results)} jobs; running a worker until they finish...")
        call_command("runworker", "--concurrency", "2", "--burst", "--max-wait", "15")
        self.stdout.write("\nResults (read back from PostgreSQL with get_result):")
        for result in results:
            result = default_task_backend.get_result(result.id)
            outcome = (repr(result.return_value) if result.status == "SUCCESSFUL"
                       else result.errors[-1].traceback.strip().splitlines()[-1])
            self.stdout.write(f"  #{result.id:<4} {result.task.name:<20} {result.status:<10} "
                              f"attempts={result.attempts}  {outcome}")
        self.stdout.write("\nSee them all: python manage.py eventjobs_status")

    def _create_database(self) -> None:
        """Create the database named in DATABASE_URL if this is a fresh machine."""
        settings = connection.settings_dict
        name = settings["NAME"]
        params = {k: v for k, v in {"host": settings.get("HOST"), "port": settings.get("PORT"),
                                    "user": settings.get("USER"),
                                    "password": settings.get("PASSWORD")}.items() if v}
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{name}"')
                self.stdout.write(f"Created database {name}")
