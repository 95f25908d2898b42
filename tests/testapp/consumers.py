"""Consumer groups the event tests run (in `consume` subprocesses and in-process).

One handler, registered in several groups. What it does comes from the event's data:
  {"seq": n}            recorded in the ledger (always, for every group that handles it)
  {"fail_in": [g]}      raises in group g (unless FIXED, or EVENTJOBS_TEST_FIXED=1)
  {"exit_in": [g]}      os._exit(1) in group g, after appending the event id to the file
                        named by EVENTJOBS_TEST_RUNLOG
  {"sleep": s}          sleeps s seconds (scale-out tests want slow handlers)
  {"enqueue": True}     enqueues testapp.tasks.record in the same transaction
"""

import os
import time

import eventjobs

from .models import EventLedger

FIXED = False


def _fixed() -> bool:
    return FIXED or os.environ.get("EVENTJOBS_TEST_FIXED") == "1"


def _handle(group: str, event) -> None:
    data = event.data if isinstance(event.data, dict) else {}
    if group in data.get("exit_in", ()):
        log = os.environ.get("EVENTJOBS_TEST_RUNLOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{event.id}\n")
        os._exit(1)
    if group in data.get("fail_in", ()) and not _fixed():
        raise ValueError(f"event {event.id} fails in {group}")
    if data.get("sleep"):
        time.sleep(data["sleep"])
    if data.get("enqueue"):
        from .tasks import record

        record.enqueue(f"event-{event.id}")
    EventLedger.objects.create(group=group, event_id=event.id, key=event.key,
                               seq=data.get("seq"), pid=os.getpid())


@eventjobs.consumer("ledger")
def ledger(event):
    _handle("ledger", event)


@eventjobs.consumer("second", types=["order.*", "invoice.paid"])
def second(event):
    _handle("second", event)


@eventjobs.consumer("flaky", max_attempts=3, retry_backoff=0.05)
def flaky(event):
    _handle("flaky", event)


@eventjobs.consumer("audit")
def audit(event):
    _handle("audit", event)


@eventjobs.consumer("tail", start="latest")
def tail(event):
    _handle("tail", event)


# --- The reliability scenarios' group (tests/reliability; appended) ---------------------------


@eventjobs.consumer("exactly-once", types=["rel.*"])
def exactly_once(event):
    """Two DB-side effects in the batch's transaction: a ledger row (doubles show as two
    rows for one event) and a counter increment per key (the `total += 1` of users)."""
    from django.db import connection

    from .models import EffectCounter

    data = event.data if isinstance(event.data, dict) else {}
    if data.get("sleep_ms"):
        time.sleep(data["sleep_ms"] / 1000)
    table = EffectCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {table} ("group", key, value) VALUES (%s, %s, 1) '
            f'ON CONFLICT ("group", key) DO UPDATE SET value = {table}.value + 1',
            ["exactly-once", event.key or ""])
    EventLedger.objects.create(group="exactly-once", event_id=event.id, key=event.key,
                               seq=data.get("seq"), pid=os.getpid())
