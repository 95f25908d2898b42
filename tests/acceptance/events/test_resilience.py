"""`consume` as a real process when its database connections break, when the server
kills or handlers hang a batch, when a handler raises SystemExit, when a group it runs is
forgotten, and when one process runs several groups (issue 8)."""

import json
import signal
import subprocess
import time

import pytest
from django.core.management import call_command

import eventjobs
from eventjobs.events.monitoring import groups_status
from eventjobs.models import Cursor, DeadLetter, Delivery
from tests.acceptance.events.helpers import consume, handled, terminate_other_backends
from tests.conftest import wait_until
from tests.testapp.models import EventLedger

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]


def _up(group: str, partitions: int = 4) -> None:
    wait_until(lambda: Cursor.objects.filter(group_id=group, owner__isnull=False).count()
               == partitions, message=f"consume to own {group}'s partitions")


def test_an_idle_consume_rides_out_the_loss_of_its_connections_and_listens_again(spawn):
    # Polling every 30 s: an event handled within seconds was woken by a restored LISTEN.
    proc = consume(spawn, "ledger", EVENTJOBS_CONSUMER_POLL_SECONDS=30)
    first = eventjobs.publish("t", {"seq": 1})
    wait_until(lambda: handled("ledger")[first.id] == 1, message="the first event")
    for round_ in range(2):
        assert terminate_other_backends() >= 2  # its control and batch connections
        wait_until(lambda r=round_: proc.output().count("the database is back") > r,
                   timeout=20, message="consume to reconnect")
        event = eventjobs.publish("t", {"seq": 2 + round_})
        wait_until(lambda e=event: handled("ledger")[e.id] == 1, timeout=10,
                   message="an event after the reconnect (LISTEN restored)")
    assert proc.popen.poll() is None, proc.output()
    out = proc.output()
    assert out.count("lost the database") == 2 and out.count("the database is back") == 2
    assert "Traceback" not in out
    assert set(handled("ledger").values()) == {1}


def test_a_busy_consume_loses_nothing_and_doubles_nothing_when_its_connections_drop(spawn):
    events = eventjobs.publish_many(
        [{"type": "t", "key": f"k{i % 7}", "data": {"seq": i, "sleep": 0.002}}
         for i in range(1500)])
    proc = consume(spawn, "ledger")
    for _ in range(3):
        before = EventLedger.objects.count()
        wait_until(lambda b=before: EventLedger.objects.count() > b + 100, timeout=30,
                   interval=0.01, message="progress")
        terminate_other_backends()  # probably mid-batch
    wait_until(lambda: EventLedger.objects.count() >= len(events), timeout=90,
               message="every event handled")
    counts = handled("ledger")
    assert set(counts) == {e.id for e in events} and set(counts.values()) == {1}
    assert proc.popen.poll() is None, proc.output()
    assert not DeadLetter.objects.exists()  # a lost batch is nobody's fault


def test_sigterm_while_the_database_is_gone_still_exits_cleanly(spawn):
    proc = consume(spawn, "ledger", "audit")
    _up("ledger")
    _up("audit")
    terminate_other_backends()
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.output()
    assert "Traceback" not in proc.output()


def test_a_handler_raising_systemexit_is_dead_lettered_and_consume_keeps_running(spawn):
    bad = eventjobs.publish("t", {"poison": "exit"})
    good = eventjobs.publish("t", {"seq": 2})
    proc = consume(spawn, "poison")
    wait_until(lambda: handled("poison")[good.id] == 1, message="the event after it")
    letter = DeadLetter.objects.get()
    assert letter.event_id == bad.id and "SystemExit: 5" in letter.error
    assert proc.popen.poll() is None, proc.output()


def test_a_batch_the_server_kills_is_counted_and_dead_lettered(spawn, tmp_path):
    # idle_in_transaction_session_timeout ends the session while a handler sleeps 2 s and
    # returns without touching the database: the loss shows only at the next statement
    # (the next event's handler, or the advance). Each counted attempt is lost with its
    # connection; after max_attempts (2) the event is dead-lettered instead of being run
    # again forever, and the next event is not blamed. Before the fix: `consume` crashed.
    runlog = tmp_path / "runs"
    before = eventjobs.publish("t", {"seq": 1})
    slow = eventjobs.publish("t", {"seq": 2, "poison": "idle:2", "runlog": True})
    after = eventjobs.publish("t", {"seq": 3})
    proc = consume(spawn, "poison", EVENTJOBS_TEST_RUNLOG=runlog,
                   EVENTJOBS_TEST_PG_OPTIONS="-c idle_in_transaction_session_timeout=700")
    wait_until(lambda: DeadLetter.objects.exists() and handled("poison")[after.id] == 1,
               timeout=60, message="the slow event dead-lettered, the next one handled")
    letter = DeadLetter.objects.get()
    assert letter.event_id == slow.id and "lost" in letter.error
    assert "idle-in-transaction" in letter.error or "terminat" in letter.error, letter.error
    runs = runlog.read_text().split()
    assert set(runs) == {str(slow.id)} and 2 <= len(runs) <= 3  # max_attempts (+1 uncounted)
    assert handled("poison") == {before.id: 1, after.id: 1}
    assert not Delivery.objects.exists()
    assert proc.popen.poll() is None, proc.output()


def test_a_hung_handler_is_interrupted_counted_and_dead_lettered(spawn, tmp_path):
    runlog = tmp_path / "runs"
    hung = eventjobs.publish("t", {"seq": 1, "poison": "sleep:60", "runlog": True})
    after = eventjobs.publish("t", {"seq": 2})
    proc = consume(spawn, "poison", EVENTJOBS_TEST_RUNLOG=runlog,
                   EVENTJOBS_HANDLER_TIMEOUT_SECONDS=1)
    wait_until(lambda: handled("poison")[after.id] == 1, timeout=30,
               message="the event after the hung one")
    letter = DeadLetter.objects.get()
    assert letter.event_id == hung.id and "HandlerTimeout" in letter.error
    assert runlog.read_text().split() == [str(hung.id)] * 2  # max_attempts, each interrupted
    assert proc.popen.poll() is None, proc.output()


def test_a_handler_no_alarm_can_interrupt_ends_its_process_and_is_dead_lettered(spawn,
                                                                                 tmp_path):
    # Stuck where Python cannot interrupt it (here: SIGALRM blocked): the watchdog ends
    # the process after twice the timeout; each restart counts the delivery first, so
    # the event is dead-lettered after its attempts instead of hanging every process.
    runlog = tmp_path / "runs"
    stuck = eventjobs.publish("t", {"poison": "uninterruptible:60", "runlog": True})
    after = eventjobs.publish("t", {"seq": 2})
    codes, outputs = [], []
    for _ in range(6):
        proc = consume(spawn, "poison", EVENTJOBS_TEST_RUNLOG=runlog,
                       EVENTJOBS_HANDLER_TIMEOUT_SECONDS=1, EVENTJOBS_CONSUMER_LEASE_SECONDS=1)
        try:
            codes.append(proc.wait(timeout=20))
            outputs.append(proc.output())
        except subprocess.TimeoutExpired:  # still running: it got past the stuck event
            break
    wait_until(lambda: handled("poison")[after.id] == 1, timeout=30,
               message="the event after the stuck one")
    assert codes and set(codes) == {70}, codes
    assert all("could not be interrupted" in out for out in outputs)
    assert proc.popen.poll() is None
    letter = DeadLetter.objects.get()
    assert letter.event_id == stuck.id and "lost" in letter.error
    runs = runlog.read_text().split()
    assert set(runs) == {str(stuck.id)} and 2 <= len(runs) <= 3


def test_forgetting_a_group_while_consume_runs_it_does_not_crash_it(spawn):
    proc = consume(spawn, "ledger", "audit")
    _up("ledger")
    _up("audit")
    call_command("consumer_group", "forget", "audit")
    wait_until(lambda: "group audit was forgotten" in proc.output(), timeout=20,
               message="consume to notice")
    event = eventjobs.publish("t", {"seq": 1})
    wait_until(lambda: handled("ledger")[event.id] == 1, message="ledger still running")
    assert proc.popen.poll() is None, proc.output()
    assert not handled("audit")


def test_one_process_running_two_groups_is_a_member_of_each_and_they_share_fairly(spawn):
    env = {"EVENTJOBS_PARTITIONS": 4, "EVENTJOBS_CONSUMER_LEASE_SECONDS": 2}
    a = consume(spawn, "ledger", "audit", **env)
    _up("ledger")
    _up("audit")
    b = consume(spawn, "ledger", "audit", **env)

    def split(group):
        owners = list(Cursor.objects.filter(group_id=group).values_list("owner", flat=True))
        return len(set(owners)) == 2 and None not in owners

    wait_until(lambda: split("ledger") and split("audit"), timeout=30,
               message="both groups split between the two processes")
    status = groups_status()
    assert status["ledger"]["members"] == 2 and status["audit"]["members"] == 2
    for group in ("ledger", "audit"):
        counts = sorted(Cursor.objects.filter(group_id=group).values_list("owner", flat=True)
                        .order_by().distinct().values_list("owner", flat=True))
        assert len(counts) == 2
    assert a.popen.poll() is None and b.popen.poll() is None


def test_the_batch_connection_has_keepalives_timeouts_and_a_name(spawn, tmp_path):
    probe = tmp_path / "probe.json"
    consume(spawn, "probe", EVENTJOBS_TEST_PROBE=probe)
    eventjobs.publish("t")
    wait_until(probe.exists, message="the probe handler")
    time.sleep(0.1)
    seen = json.loads(probe.read_text())
    params = seen["parameters"]
    assert params.get("keepalives") == "1" and int(params["keepalives_idle"]) > 0
    assert int(params["tcp_user_timeout"]) > 0 and int(params["connect_timeout"]) > 0
    assert seen["application_name"].startswith("eventjobs consume batches")
