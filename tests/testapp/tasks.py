"""Tasks the test-suite's worker processes run."""

import asyncio
import os
import time

from django.tasks import task

import eventjobs

from .models import Ledger


def _record(key: str, attempt: int = 1) -> None:
    Ledger.objects.create(job_key=key, attempt=attempt, pid=os.getpid())


@task
def add(a, b):
    return a + b


@task
def record(key):
    _record(key)
    return key


@task
def record_then_enqueue(key, queue):
    """Record `key`, then enqueue a `record` of `<key>-next` into `queue`."""
    _record(key)
    record.using(queue_name=queue).enqueue(f"{key}-next")


@task
def leave_transaction_open():
    """Misbehaves: opens a transaction, writes, and returns without ending it."""
    from django.db import transaction

    transaction.atomic().__enter__()
    _record("leaked")


@task
def connection_link_options():
    """The libpq keepalive parameters of the connection this task's ORM queries use."""
    from django.db import connection

    connection.ensure_connection()
    parameters = connection.connection.info.get_parameters()
    return {name: parameters.get(name) for name in ("keepalives", "keepalives_idle",
                                                   "tcp_user_timeout")}


@task(priority=10)
def record_high(key):
    _record(key)


@task
async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True)
def with_context(context, key):
    _record(key, attempt=context.attempt)
    return {"attempt": context.attempt, "id": context.task_result.id}


@task(max_attempts=3, retry_backoff=0.2)
def always_fails(key):
    _record(key)
    raise ValueError(f"boom {key}")


@task(takes_context=True, max_attempts=3, retry_backoff=0.2)
def fails_then_succeeds(context, key, failures):
    _record(key, attempt=context.attempt)
    if context.attempt <= failures:
        raise RuntimeError(f"attempt {context.attempt} fails")
    return context.attempt


@task(takes_context=True, max_attempts=3, retry_backoff=0.1)
def slow_record(context, key, seconds):
    """Records its start, sleeps, records its end: shows whether it ran to completion."""
    _record(f"{key}:start", attempt=context.attempt)
    time.sleep(seconds)
    _record(f"{key}:end", attempt=context.attempt)
    return key


@task(takes_context=True, max_attempts=2)
def cpu_bound(context, key, seconds):
    """Burns CPU in pure Python (holding the GIL) for `seconds`."""
    _record(f"{key}:start", attempt=context.attempt)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
    _record(f"{key}:end", attempt=context.attempt)
    return n > 0


@task(max_attempts=2, retry_backoff=0.1)
def exits_process(key):
    _record(key)
    os._exit(1)


@task(timeout=1, max_attempts=1)
def too_slow(key):
    _record(key)
    time.sleep(30)


@task
def returns_set():
    return {1, 2}


# --- Tasks for tests/acceptance/test_worker_*.py (appended; do not change the above) ---


def _record_db_time(key: str, attempt: int = 1) -> None:
    """Like _record, but `at` is the database's clock (clock_timestamp()), not this host's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Ledger._meta.db_table} (job_key, attempt, pid, at) "
            "VALUES (%s, %s, %s, clock_timestamp())",
            [key, attempt, os.getpid()],
        )


@task(takes_context=True, max_attempts=3, retry_backoff=0.1)
def slow_record_db(context, key, seconds):
    """slow_record with DB-clock ledger rows; returns who ran it, to tell attempts apart."""
    _record_db_time(f"{key}:start", attempt=context.attempt)
    time.sleep(seconds)
    _record_db_time(f"{key}:end", attempt=context.attempt)
    return {"key": key, "pid": os.getpid(), "attempt": context.attempt}


@task(max_attempts=2, retry_backoff=0.1)
def raises_system_exit(key):
    _record(key)
    raise SystemExit(3)


# --- Tasks for tests/acceptance/jobs/test_hardening.py (issue 8: neighbours, hostages, user code) ---


@task(max_attempts=1)
def record_once(key):
    """A quick job allowed a single attempt: a neighbour's crash must not cost it."""
    _record(key)
    return key


@task(max_attempts=1)
def exits_once(key):
    _record(key)
    os._exit(1)


@task(takes_context=True, max_attempts=2)
def watches_lease(context, key, seconds):
    """Runs up to `seconds`, recording ':lost' as soon as eventjobs.lease_lost() says so."""
    import eventjobs

    _record_db_time(f"{key}:start", attempt=context.attempt)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if eventjobs.lease_lost():
            _record_db_time(f"{key}:lost", attempt=context.attempt)
            return "lost"
        time.sleep(0.05)
    _record_db_time(f"{key}:end", attempt=context.attempt)
    return "done"


def _receiver_raises(signal_name):
    def receiver(sender, task_result, **kwargs):
        """Connected when EVENTJOBS_TEST_RECEIVERS_RAISE=1: user code that misbehaves."""
        if task_result.args and str(task_result.args[0]).startswith(f"raise-in-{signal_name}"):
            raise RuntimeError(f"{signal_name} receiver raised for {task_result.args[0]}")

    return receiver


if os.environ.get("EVENTJOBS_TEST_RECEIVERS_RAISE") == "1":
    from django.tasks.signals import task_finished, task_started

    task_started.connect(_receiver_raises("started"), weak=False)
    task_finished.connect(_receiver_raises("finished"), weak=False)


# --- Tasks of the reliability scenarios (tests/reliability; appended) -------------------------


def _mark(phase: str, key: str, attempt: int) -> None:
    """Append `phase key attempt pid time` to the file named by EVENTJOBS_TEST_RUNLOG.

    One O_APPEND write per line: cheap (no database round trip, so the window between
    "the job started" and "the marker exists" is microseconds), atomic between processes,
    and kept by the kernel when the process is SIGKILLed right after.
    """
    path = os.environ.get("EVENTJOBS_TEST_RUNLOG")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{phase} {key} {attempt} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


@task(takes_context=True)
def rel_job(context, key, ms=0):
    """One database effect per run, committed in its own transaction: a Ledger row
    (a key with two rows ran twice)."""
    if ms:
        time.sleep(ms / 1000)
    _record(key, attempt=context.attempt)
    return key


@task(takes_context=True, max_attempts=3, retry_backoff=0.1)
def rel_marked(context, key, ms):
    """Marks its start and end in the run log, `ms` apart."""
    _mark("start", key, context.attempt)
    time.sleep(ms / 1000)
    _mark("end", key, context.attempt)


@task(takes_context=True, max_attempts=1)
def rel_marked_once(context, key, ms):
    """rel_marked with a single attempt: a lost run makes it FAILED for good."""
    _mark("start", key, context.attempt)
    time.sleep(ms / 1000)
    _mark("end", key, context.attempt)


@task(takes_context=True, max_attempts=3, retry_backoff=0.1)
def rel_lease_watch(context, key, seconds):
    """The first attempt runs up to `seconds`, watching `eventjobs.lease_lost()`, and
    gives up (marking "lost") once its lease is known lost; later attempts finish at
    once. Marks "no-api" when eventjobs has no lease_lost()."""
    _mark("start", key, context.attempt)
    lease_lost = getattr(eventjobs, "lease_lost", None)
    if lease_lost is None:
        _mark("no-api", key, context.attempt)
    deadline = time.monotonic() + (seconds if context.attempt == 1 else 0.3)
    while time.monotonic() < deadline:
        if lease_lost is not None and lease_lost():
            _mark("lost", key, context.attempt)
            return {"attempt": context.attempt, "abandoned": True}
        time.sleep(0.05)
    _mark("end", key, context.attempt)
    return {"attempt": context.attempt, "abandoned": False}


# --- Tasks for jobs part 2 (issue 13): periodic, unique, limits, snooze, atomic ---

from eventjobs.exceptions import Snooze  # noqa: E402


@task(unique=True)
def unique_record(key):
    _record(key)
    return key


@task(unique=True, unique_for=60)
def unique_for_record(key):
    _record(key)
    return key


@task(concurrency=2, max_attempts=3, retry_backoff=0.1)
def limited_slow(key, seconds):
    """At most 2 at once: writes DB-clock start and end rows to check it."""
    _record_db_time(f"{key}:start")
    time.sleep(seconds)
    _record_db_time(f"{key}:end")
    return key


@task(concurrency=1, concurrency_key="account")
def per_account(key, account):
    _record(key)
    return account


@task(rate_limit="5/s")
def rate_limited(key):
    _record_db_time(key)
    return key


@task(concurrency=1, max_attempts=3, retry_backoff=0.1)
def limited_fails(key):
    _record(key)
    raise ValueError(f"limited boom {key}")


@task(takes_context=True, max_attempts=1)
def snoozes_then_records(context, key, snoozes, seconds=0):
    """Snoozes `snoozes` times (counted in the ledger), then records ':done'."""
    from .models import Ledger

    seen = Ledger.objects.filter(job_key=f"{key}:snoozed").count()
    if seen < snoozes:
        _record(f"{key}:snoozed", attempt=context.attempt)
        raise Snooze(seconds)
    _record(f"{key}:done", attempt=context.attempt)
    return {"attempt": context.attempt}


@task(atomic=True, max_attempts=20, retry_backoff=0)
def atomic_record(key, seconds=0.0):
    """Exactly once: its ledger row commits with the job's success, or not at all."""
    _record(key)
    if seconds:
        time.sleep(seconds)
    return key


@task(atomic=True, max_attempts=2, retry_backoff=0)
def atomic_fails(key):
    _record(key)
    raise RuntimeError(f"atomic boom {key}")


@task(takes_context=True)
def ticked(context, key):
    """A periodic test task (registered only when EVENTJOBS_TEST_PERIODIC=1): one ledger
    row per run, keyed by its job id."""
    _record(f"{key}:{context.task_result.id}")


if os.environ.get("EVENTJOBS_TEST_PERIODIC") == "1":
    eventjobs.periodic(every=1, args=["tick"])(ticked)


@task(takes_context=True, rate_limit="3/s", max_attempts=6, retry_backoff=0.05)
def rate_limited_fails(context, key):
    """A rate-limited call to an API that is down: records each start (DB clock), fails,
    and is retried quickly. Every attempt is a start the rate must count."""
    _record_db_time(f"{key}:{context.attempt}", attempt=context.attempt)
    raise ConnectionError(f"the rate-limited API is down ({key})")
