"""The event half's tables: the append-only event log, consumer groups and their cursors,
group members (for partition leases), retry counters and dead letters.

Hot paths never go through these models (see eventjobs/eventstore.py); the models exist
for migrations, the admin and the cold paths (commands, monitoring).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.functions import Now

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler


class Xid8Field(models.Field):
    """PostgreSQL's 64-bit transaction id (`xid8`), read as a Python int.

    psycopg returns xid8 as text; comparing that text would be wrong once txids change
    digit count, so it is converted to int on the way out and bound as `::text::xid8`.
    """

    description = "PostgreSQL xid8 (64-bit transaction id)"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "xid8"

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper
                      ) -> int | None:
        return None if value is None else int(value)

    def to_python(self, value: Any) -> int | None:
        return None if value is None else int(value)

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else str(int(value))

    def get_placeholder_sql(self, value: Any, compiler: SQLCompiler,
                            connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        if hasattr(value, "as_sql"):
            sql, params = compiler.compile(value)
            return sql, params
        return "%s::text::xid8", (value,)


class CurrentXactId(models.Func):
    """pg_current_xact_id(): the inserting transaction's id (the event's place in the log)."""

    function = "pg_current_xact_id"
    template = "%(function)s()"
    output_field = Xid8Field()


class Event(models.Model):
    """One published event. Rows are never updated; a trigger refuses UPDATE and DELETE
    (except from `prune_events`)."""

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=200)
    key = models.TextField(null=True, blank=True)
    # crc32 of the key as a signed 32-bit int, stored at publish: partition = abs(hash) % N.
    key_hash = models.IntegerField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    # The publishing transaction's id: readers order by (txid, id) and read only below
    # the snapshot xmin, so an event committed late can never land behind a cursor.
    txid = Xid8Field(db_default=CurrentXactId())

    class Meta:
        db_table = "eventjobs_event"
        indexes = [
            models.Index(fields=["txid", "id"], name="eventjobs_event_position"),
            models.Index(fields=["created_at"], name="eventjobs_event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"

    @property
    def position(self) -> dict:
        return {"txid": str(self.txid), "event_id": self.id}


class ConsumerGroup(models.Model):
    """A consumer group: its partition count, cluster identity and recent errors."""

    name = models.CharField(max_length=200, primary_key=True)
    partitions = models.PositiveIntegerField(default=1)
    # pg_control_system().system_identifier of the cluster the cursors' txids belong to.
    system_identifier = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    recent_errors = models.JSONField(default=list, blank=True)
    # The horizon xid the group's committed events wait behind, and when it was first
    # seen there: who holds it is visible only with pg_read_all_stats (status, checks).
    held_back_xid = Xid8Field(null=True, blank=True)
    held_back_since = models.DateTimeField(null=True, blank=True)

    # Not columns: the admin attaches a page's monitoring figures (admin/groups.py).
    status: dict[str, Any]
    alive: int
    last_active: datetime | None

    class Meta:
        db_table = "eventjobs_consumer_group"
        permissions = [("pause_consumergroup", "Can pause and resume consumer groups"),
                       ("reset_consumergroup", "Can reset consumer group positions")]

    def __str__(self) -> str:
        return self.name


class Cursor(models.Model):
    """The position of one partition of a group, and which member owns it (lease)."""

    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, db_column="group_name",
                              related_name="cursors")
    partition = models.PositiveIntegerField()
    # Last handled position (txid, event_id); (0, 0) is before the first event.
    txid = Xid8Field()
    event_id = models.BigIntegerField(default=0)
    # Bumped by reset/pause/resume; a runner holding an older generation reloads.
    generation = models.BigIntegerField(default=0)
    paused = models.BooleanField(default=False)
    owner = models.CharField(max_length=200, null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "eventjobs_cursor"
        constraints = [
            models.UniqueConstraint(fields=["group", "partition"],
                                    name="eventjobs_cursor_group_partition"),
        ]

    def __str__(self) -> str:
        return f"{self.group_id}[{self.partition}] at ({self.txid}, {self.event_id})"


class GroupMember(models.Model):
    """A live `consume` process taking part in a group (fair share of partitions)."""

    id = models.CharField(max_length=200, primary_key=True)
    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, db_column="group_name",
                              related_name="members")
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    # Backend pid of the member's control connection: gone from pg_stat_activity means
    # the process died, so its partitions can be taken before the lease runs out.
    backend_pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(db_default=Now())
    last_seen = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "eventjobs_group_member"

    def __str__(self) -> str:
        return self.id


class Delivery(models.Model):
    """Retry state of an event whose handler failed (or killed its process) in a group.

    Written and committed *before* a handler that failed before runs again, so a
    handler that kills its process still uses up its attempts."""

    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, db_column="group_name")
    event_id = models.BigIntegerField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "eventjobs_delivery"
        constraints = [
            models.UniqueConstraint(fields=["group", "event_id"],
                                    name="eventjobs_delivery_group_event"),
        ]


class DeadLetterStatus(models.TextChoices):
    """Stored in capitals, like the job statuses (Django's task statuses)."""

    OPEN = "OPEN", "Open"
    RESOLVED = "RESOLVED", "Resolved"
    DISCARDED = "DISCARDED", "Discarded"


class DeadLetter(models.Model):
    """An event a group's handlers gave up on, with a copy of the event (retention
    cannot delete it) and the last error."""

    id = models.BigAutoField(primary_key=True)
    group = models.CharField(max_length=200, db_column="group_name")
    event_id = models.BigIntegerField()
    event_type = models.CharField(max_length=200)
    event_key = models.TextField(null=True, blank=True)
    event_data = models.JSONField(null=True, blank=True)
    event_source = models.CharField(max_length=200, null=True, blank=True)
    event_created_at = models.DateTimeField()
    event_txid = Xid8Field()
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=DeadLetterStatus.choices,
                              default=DeadLetterStatus.OPEN)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "eventjobs_deadletter"
        permissions = [("reprocess_deadletter", "Can reprocess dead letters"),
                       ("discard_deadletter", "Can discard dead letters")]
        constraints = [
            # One open dead letter per (group, event); history rows may repeat.
            models.UniqueConstraint(fields=["group", "event_id"],
                                    condition=models.Q(status="OPEN"),
                                    name="eventjobs_deadletter_one_open"),
        ]
        indexes = [models.Index(fields=["group", "status"], name="eventjobs_dl_group_status")]

    def __str__(self) -> str:
        return f"{self.group}: {self.event_type} #{self.event_id} ({self.status})"
