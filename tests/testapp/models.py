from django.db import models


class Ledger(models.Model):
    """One row per task execution, written in the task's own transaction."""

    job_key = models.CharField(max_length=100)
    attempt = models.IntegerField(default=1)
    pid = models.IntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)
