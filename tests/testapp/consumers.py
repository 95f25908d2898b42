"""Consumer groups the event tests run (in `consume` subprocesses and in-process).

One handler, registered in several groups. What it does comes from the event's data:
  {"seq": n}            recorded in the ledger (always, for every group that handles it)
  {"fail_in": [g]}      raises in group g (unless FIXED, or EVENTJOBS_TEST_FIXED=1)
  {"exit_in": [g]}      os._exit(1) in group g, after appending the event id to the file
                        named by EVENTJOBS_TEST_RUNLOG
  {"sleep": s}          sleeps s seconds (scale-out tests want slow handlers)
  {"enqueue": True}     enqueues testapp.tasks.record in the same transaction
  {"poison": what}      (group "poison" only) misbehaves: see _poison
  {"runlog": True}      appends the event id to EVENTJOBS_TEST_RUNLOG before anything else

Group "exclusive" checks that no two transactions handle one key at once (S24); group
"probe" writes its batch connection's libpq parameters to EVENTJOBS_TEST_PROBE.
"""

import json
import os
import signal
import time

from django.db import DatabaseError, connection, transaction

import eventjobs

from .models import EventLedger

FIXED = False


def _fixed() -> bool:
    return FIXED or os.environ.get("EVENTJOBS_TEST_FIXED") == "1"


def _runlog(event) -> None:
    log = os.environ.get("EVENTJOBS_TEST_RUNLOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{event.id}\n")


def _handle(group: str, event) -> None:
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("runlog"):
        _runlog(event)
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


class Poison(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


async def _never_awaited():
    EventLedger.objects.create(group="poison-coroutine", event_id=0)


def _poison(what: str):
    """One way a handler can misbehave (each must count as a failure of its own event)."""
    if what == "exit":
        raise SystemExit(5)
    if what == "interrupt":
        raise KeyboardInterrupt()
    if what == "base":
        raise Poison("poison")
    if what == "swallow":  # an ORM/SQL error caught without a savepoint: transaction aborted
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        except DatabaseError:
            pass
    elif what == "rollback":
        transaction.set_rollback(True)
    elif what == "coroutine":
        return _never_awaited()
    elif what == "busy":  # a query sent on the raw connection and never read back
        connection.connection.pgconn.send_query(b"SELECT 1")
    elif what == "statement_timeout":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '100ms'")
            cursor.execute("SELECT pg_sleep(2)")
    elif what.startswith("uninterruptible:"):  # no alarm can reach it: as if stuck in C code
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        time.sleep(float(what.split(":", 1)[1]))
    elif what.startswith(("sleep:", "idle:")):  # idle: sleeps and returns, writing nothing
        time.sleep(float(what.split(":", 1)[1]))
    return None


@eventjobs.consumer("poison", max_attempts=2, retry_backoff=0.01)
def poison(event):
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("runlog"):
        _runlog(event)
    what = data.get("poison")
    if what and not _fixed():
        result = _poison(what)
        if not what.startswith("sleep:"):
            return result  # no ledger row: the misbehaving handler wrote nothing that counts
    EventLedger.objects.create(group="poison", event_id=event.id, key=event.key,
                               seq=data.get("seq"), pid=os.getpid())


@eventjobs.consumer("exclusive")
def exclusive(event):
    """Holds a transaction-level advisory lock on its key until the batch commits: if
    another process's open batch holds it, two owners handle one key at once."""
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("runlog"):
        _runlog(event)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(4242, %s)", [event.key_hash or 0])
        alone = cursor.fetchone()[0]
    if data.get("sleep"):
        time.sleep(data["sleep"])
    EventLedger.objects.create(group="exclusive" if alone else "exclusive-overlap",
                               event_id=event.id, key=event.key, seq=data.get("seq"),
                               pid=os.getpid())


@eventjobs.consumer("probe")
def probe(event):
    path = os.environ.get("EVENTJOBS_TEST_PROBE")
    if path:
        info = connection.connection.info
        with open(path, "w") as f:
            json.dump({"parameters": info.get_parameters(),
                       "application_name": info.parameter_status("application_name")},
                      f)


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
