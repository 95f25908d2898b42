from django.db import models


class Ledger(models.Model):
    """One row per task execution, written in the task's own transaction."""

    job_key = models.CharField(max_length=100)
    attempt = models.IntegerField(default=1)
    pid = models.IntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)


class EventLedger(models.Model):
    """One row per handling of an event by a test consumer group, written in the
    handler's transaction. No unique constraint on purpose: tests count doubles."""

    group = models.CharField(max_length=100)
    event_id = models.BigIntegerField()
    key = models.TextField(null=True)
    seq = models.IntegerField(null=True)
    pid = models.IntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)


class EffectCounter(models.Model):
    """A counter per (group, key) that reliability handlers increment in their batch
    transaction: the classic `total += 1` effect that must never double."""

    group = models.CharField(max_length=100)
    key = models.TextField()
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "key"],
                                               name="testapp_effectcounter_group_key")]
