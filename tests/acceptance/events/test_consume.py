"""`manage.py consume` as real processes against real PostgreSQL: racing publishers,
SIGKILLs, handlers that kill their process, pause/reset of a running process,
scale-out with takeover, and delivery held back by an open transaction."""

import random
import signal
import threading
import time
from collections import Counter, defaultdict

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction

import eventjobs
from eventjobs.models import Cursor, DeadLetter
from tests.acceptance.events.helpers import consume, handled
from tests.conftest import wait_until
from tests.testapp.models import EventLedger

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]

class _Rollback(Exception):
    pass


def _publisher(n: int, txns: int, committed: list, rolled_back: list, seed: int) -> None:
    rng = random.Random(seed)
    try:
        for t in range(txns):
            try:
                with transaction.atomic():
                    # seq: this publisher's publish order (t-th transaction, i-th event)
                    ids = [eventjobs.publish("race", {"pub": n, "t": t, "seq": t * 10 + i},
                                             key=f"p{n}").id
                           for i in range(rng.randint(1, 3))]
                    time.sleep(rng.random() * 0.02)  # commit late, out of id order
                    if rng.random() < 0.1:
                        raise _Rollback()
                committed.extend(ids)
            except _Rollback:
                rolled_back.extend(ids)
    finally:
        connection.close()


def _naive_reader(db_url: str, stop: threading.Event, seen: list) -> None:
    """The classic broken reader: WHERE id > last_id ORDER BY id."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        last = 0
        while True:
            done = stop.is_set()
            for (event_id,) in conn.execute(
                    "SELECT id FROM eventjobs_event WHERE id > %s ORDER BY id", [last]):
                seen.append(event_id)
                last = event_id
            if done:
                return
            time.sleep(0.001)


def test_racing_publishers_no_skips_no_doubles_and_the_naive_reader_skips(spawn, db_url):
    proc = consume(spawn, "ledger", "audit")
    wait_until(lambda: Cursor.objects.filter(owner__isnull=False).values("group_id")
               .distinct().count() == 2, message="consume to be up and reading")
    committed, rolled_back, naive_seen = [], [], []
    stop = threading.Event()
    naive = threading.Thread(target=_naive_reader, args=(db_url, stop, naive_seen))
    naive.start()
    publishers = [threading.Thread(target=_publisher, args=(n, 80, committed, rolled_back, n))
                  for n in range(6)]
    for t in publishers:
        t.start()
    for t in publishers:
        t.join()
    stop.set()
    naive.join()
    assert rolled_back, "the harness should roll some transactions back"
    wait_until(lambda: len(handled("ledger")) >= len(committed)
               and len(handled("audit")) >= len(committed), timeout=30,
               message="consume to handle every committed event")
    time.sleep(0.3)  # would a double or a phantom still arrive?
    for group in ("ledger", "audit"):
        counts = handled(group)
        assert set(counts) == set(committed)  # no skips, no rolled-back (phantom) events
        assert set(counts.values()) == {1}  # no doubles
    # Per-publisher order: each publisher's events arrive in the order it published them.
    per_publisher = defaultdict(list)
    for key, seq in (EventLedger.objects.filter(group="ledger").order_by("id")
                     .values_list("key", "seq")):
        per_publisher[key].append(seq)
    assert len(per_publisher) == 6
    for key, seqs in per_publisher.items():
        assert seqs == sorted(seqs), f"publisher {key} delivered out of order"
    # One total order: every group sees the same sequence.
    orders = [list(EventLedger.objects.filter(group=g).order_by("id")
                   .values_list("event_id", flat=True)) for g in ("ledger", "audit")]
    assert orders[0] == orders[1]
    # The same harness with a naive `id > last_id` reader loses events: the test has teeth.
    assert set(committed) - set(naive_seen), "naive reader unexpectedly saw every event"
    assert proc.popen.poll() is None


def test_repeated_sigkill_never_doubles_an_effect(spawn):
    events = eventjobs.publish_many(
        [{"type": "t", "key": f"k{i % 13}", "data": {"seq": i}} for i in range(3000)])
    proc = consume(spawn, "ledger")
    for _ in range(4):
        before = EventLedger.objects.count()
        wait_until(lambda b=before: EventLedger.objects.count() > b + 150, timeout=30,
                   interval=0.01, message="progress before the kill")
        proc.kill_group()  # SIGKILL, probably mid-batch
        proc = consume(spawn, "ledger")
    wait_until(lambda: EventLedger.objects.count() >= len(events), timeout=60,
               message="every event handled")
    time.sleep(0.2)
    counts = handled("ledger")
    assert set(counts) == {e.id for e in events}
    assert set(counts.values()) == {1}, Counter(counts.values())
    assert len(set(EventLedger.objects.values_list("pid", flat=True))) >= 2


def test_a_handler_that_kills_its_process_is_dead_lettered_after_its_attempts(spawn, tmp_path):
    runlog = tmp_path / "runs"
    ok1 = eventjobs.publish("t", {"seq": 1})
    killer = eventjobs.publish("t", {"seq": 2, "exit_in": ["flaky"]})
    ok2 = eventjobs.publish("t", {"seq": 3})
    codes = []
    for _ in range(8):
        proc = consume(spawn, "flaky", "--burst", EVENTJOBS_TEST_RUNLOG=runlog)
        codes.append(proc.wait(timeout=30))
        if codes[-1] == 0:
            break
    assert codes[-1] == 0, (codes, proc.output())
    runs = runlog.read_text().split()
    assert set(runs) == {str(killer.id)}
    assert 3 <= len(runs) <= 4  # max_attempts counted runs (+1 before the first count)
    letter = DeadLetter.objects.get()
    assert letter.event_id == killer.id and letter.attempts == 3 and letter.status == "OPEN"
    assert "died" in letter.error
    assert handled("flaky") == {ok1.id: 1, ok2.id: 1}


def test_pause_resume_and_reset_reach_a_running_process_and_sigterm_hands_over(spawn):
    proc = consume(spawn, "ledger")
    first = eventjobs.publish("t", {"seq": 1})
    wait_until(lambda: handled("ledger")[first.id] == 1, message="first event")
    call_command("consumer_group", "pause", "ledger")
    paused = eventjobs.publish("t", {"seq": 2})
    time.sleep(1.0)  # several poll intervals and a NOTIFY: nothing may be handled
    assert paused.id not in handled("ledger")
    call_command("consumer_group", "resume", "ledger")
    wait_until(lambda: handled("ledger")[paused.id] == 1, message="handled after resume")
    call_command("consumer_group", "reset", "ledger", "--to-beginning")
    wait_until(lambda: handled("ledger") == {first.id: 2, paused.id: 2},
               message="replay after reset")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert not Cursor.objects.filter(group_id="ledger", owner__isnull=False).exists()


def test_two_processes_share_a_group_keep_key_order_and_take_over(spawn):
    env = {"EVENTJOBS_CONSUMER_LEASE_SECONDS": 2, "EVENTJOBS_PARTITIONS": 4}
    a = consume(spawn, "ledger", **env)
    wait_until(lambda: Cursor.objects.filter(group_id="ledger", owner__isnull=False).count() == 4,
               message="first process owns every partition")
    b = consume(spawn, "ledger", **env)
    events = eventjobs.publish_many(
        [{"type": "t", "key": f"k{i % 20}", "data": {"seq": i, "sleep": 0.004}}
         for i in range(800)])
    wait_until(lambda: len(set(EventLedger.objects.values_list("pid", flat=True))) == 2,
               timeout=20, message="both processes handling events")
    owners = set(Cursor.objects.filter(group_id="ledger").values_list("owner", flat=True))
    assert len(owners) == 2  # partitions are split, not one active process behind a lock
    a.kill_group()
    wait_until(lambda: EventLedger.objects.count() >= len(events), timeout=60,
               message="survivor handles the rest")
    counts = handled("ledger")
    assert set(counts) == {e.id for e in events} and set(counts.values()) == {1}
    per_key = defaultdict(list)
    for key, seq in EventLedger.objects.order_by("id").values_list("key", "seq"):
        per_key[key].append(seq)
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"key {key} out of order"
    b_pid = b.pid
    assert EventLedger.objects.filter(pid=b_pid).exists()


def test_burst_waits_for_an_open_transaction_then_exits_3_naming_it(spawn, db_url):
    from eventjobs.events.monitoring import groups_status

    holder = psycopg.connect(db_url, autocommit=False)
    try:
        holder_pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        holder.execute("SELECT pg_current_xact_id()")
        event = eventjobs.publish("t", {"seq": 1})
        proc = consume(spawn, "ledger", "--burst", "--max-wait", "1.5")
        assert proc.wait(timeout=30) == 3, proc.output()
        assert f"pid {holder_pid}" in proc.output()
        assert not handled("ledger")  # held back, not lost
        held = groups_status()["ledger"]["held_back_by"]
        assert held and held["pid"] == holder_pid
    finally:
        holder.rollback()
        holder.close()
    proc = consume(spawn, "ledger", "--burst", "--max-wait", "20")
    assert proc.wait(timeout=30) == 0, proc.output()
    assert handled("ledger") == {event.id: 1}


def test_consume_help_explains(spawn):
    proc = spawn("consume", "--help")
    assert proc.wait(timeout=30) == 0
    out = proc.output()
    assert "--burst" in out and "--max-wait" in out and "SIGTERM" in out


