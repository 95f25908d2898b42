"""Sample tasks the demo enqueues."""

import time

from django.tasks import task


@task
def send_welcome_email(address: str) -> str:
    """Pretend to send an email."""
    time.sleep(0.2)
    return f"welcome email sent to {address}"


@task(priority=50)
def rebuild_sitemap() -> int:
    """A high-priority job: runs before the emails queued ahead of it."""
    return 42


@task(takes_context=True, max_attempts=3, retry_backoff=0.5)
def flaky_sum(context, a: int, b: int) -> int:
    """Fails on its first attempt, to show a retry with backoff."""
    if context.attempt == 1:
        raise ConnectionError("pretend the mail server was down")
    return a + b


@task(max_attempts=2, retry_backoff=0.5)
def always_broken() -> None:
    """Fails every attempt: ends FAILED, the jobs' dead-letter queue, with both errors."""
    raise ValueError("this job is broken on purpose")
