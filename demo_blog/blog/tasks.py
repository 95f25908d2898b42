"""Sample tasks the demo enqueues."""

import time

from django.tasks import task


@task
def send_welcome_email(address: str) -> str:
    """Pretend to send an email."""
    time.sleep(0.2)
    return f"sent to {address}"


@task(max_attempts=2, retry_backoff=0.5)
def flaky_sum(a: int, b: int) -> int:
    """Fails on its first attempt, to show a retry."""
    from django.tasks import TaskContext  # noqa: F401  (documented in the jobs guide)

    return a + b
