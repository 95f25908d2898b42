"""Consumer groups run in-process on real PostgreSQL: exactly-once effects, failures,
dead letters, replay and control, events to jobs, monitoring, dump/restore."""

import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection, transaction

import eventjobs
from eventjobs.db import django_connection
from eventjobs.events import controlstore
from eventjobs.events import store as eventstore
from eventjobs.events.monitoring import groups_status
from eventjobs.events.runner import PAUSED, ClusterMismatch
from eventjobs.models import ConsumerGroup, Cursor, DeadLetter, Delivery, Job
from tests.integration.events.helpers import (  # noqa: F401
    drain,
    runner_fixture,
    wait_final,
    wait_until,
)
from tests.testapp import consumers
from tests.testapp.models import EventLedger

pytestmark = pytest.mark.django_db(transaction=True)


def handled(group: str) -> Counter:
    return Counter(EventLedger.objects.filter(group=group).values_list("event_id", flat=True))


def test_dead_letters_are_exactly_the_failing_events_then_reprocessed(runner, monkeypatch):
    events = eventjobs.publish_many(
        [{"type": "t", "key": f"k{i % 5}",
          "data": {"seq": i, **({"fail_in": ["flaky"]} if i % 7 == 0 else {})}}
         for i in range(60)])
    failing = {e.id for e in events if e.data["seq"] % 7 == 0}
    flaky = runner("flaky")
    drain(flaky)
    counts = handled("flaky")
    assert set(counts) == {e.id for e in events} - failing
    assert set(counts.values()) == {1}  # the others handled exactly once
    open_letters = DeadLetter.objects.filter(group="flaky", status="OPEN")
    assert {d.event_id for d in open_letters} == failing
    letter = open_letters.first()
    assert letter.attempts == 3 and "ValueError" in letter.error and "Traceback" in letter.traceback
    assert letter.event_type == "t" and letter.event_data["seq"] % 7 == 0
    assert not Delivery.objects.exists()  # retry counters are gone once decided
    status = groups_status()["flaky"]
    assert status["dead_letters"] == len(failing) and status["lag"] == 0
    assert status["recent_errors"] and status["recent_errors"][0]["type"] == "t"

    monkeypatch.setattr(consumers, "FIXED", True)
    ids = list(open_letters.values_list("id", flat=True))
    assert len(eventjobs.reprocess_dead_letters(ids)["resolved"]) == len(failing)
    assert eventjobs.reprocess_dead_letters(ids) == {"resolved": [], "failed": [],
                                                  "replaying": [], "not_found": []}
    counts = handled("flaky")
    assert set(counts) == {e.id for e in events} and set(counts.values()) == {1}
    assert not DeadLetter.objects.filter(status="OPEN").exists()


def test_reprocess_failure_keeps_it_open_and_discard(runner):
    eventjobs.publish("t", {"fail_in": ["flaky"]})
    flaky = runner("flaky")
    drain(flaky)
    letter = DeadLetter.objects.get()
    assert eventjobs.reprocess_dead_letters(group="flaky")["failed"] == [letter.id]
    letter.refresh_from_db()
    assert letter.status == "OPEN" and letter.attempts == 4
    call_command("deadletters", "discard", str(letter.id))
    letter.refresh_from_db()
    assert letter.status == "DISCARDED"
    assert eventjobs.discard_dead_letters([letter.id]) == 0


def test_replay_resolves_an_open_dead_letter_in_the_same_transaction(runner, monkeypatch):
    event = eventjobs.publish("t", {"fail_in": ["flaky"]})
    flaky = runner("flaky")
    drain(flaky)
    assert DeadLetter.objects.get().status == "OPEN"
    monkeypatch.setattr(consumers, "FIXED", True)
    call_command("consumer_group", "reset", "flaky", "--to-event", str(event.id))
    drain(flaky)
    assert DeadLetter.objects.get().status == "RESOLVED"
    assert handled("flaky") == {event.id: 1}


def test_a_retry_commits_what_came_before_and_recovers(runner, monkeypatch):
    events = eventjobs.publish_many([{"type": "t", "data": {"seq": i}} for i in range(5)])
    calls = []
    original = consumers._handle

    def fail_twice(group, event):
        if event.id == events[2].id and len(calls) < 2:
            calls.append(event.id)
            raise RuntimeError("transient")
        original(group, event)

    monkeypatch.setattr(consumers, "_handle", fail_twice)
    flaky = runner("flaky")
    wait_final(*events)
    flaky.run_once()  # fails on events[2]: events[0..1] are committed before backing off
    assert sorted(handled("flaky")) == [events[0].id, events[1].id]
    assert Delivery.objects.get().attempts == 1
    drain(flaky)
    assert handled("flaky") == {e.id: 1 for e in events}
    assert not DeadLetter.objects.exists() and not Delivery.objects.exists()


def test_two_groups_are_independent(runner):
    events = eventjobs.publish_many([
        {"type": "order.created", "data": {"fail_in": ["flaky"]}},
        {"type": "user.created"},
        {"type": "invoice.paid"},
    ])
    flaky, second = runner("flaky"), runner("second")
    drain(second)
    assert set(handled("second")) == {events[0].id, events[2].id}  # its types only
    assert not handled("flaky")
    drain(flaky)
    assert set(handled("flaky")) == {events[1].id, events[2].id}
    assert DeadLetter.objects.get().group == "flaky"
    assert set(handled("second")) == {events[0].id, events[2].id}
    status = groups_status()
    assert status["flaky"]["dead_letters"] == 1 and status["second"]["dead_letters"] == 0


def test_handler_enqueued_jobs_commit_with_the_position(runner):
    ok = eventjobs.publish("t", {"enqueue": True})
    bad = eventjobs.publish("t", {"enqueue": True, "fail_in": ["flaky"]})
    flaky = runner("flaky")
    drain(flaky)
    assert list(Job.objects.values_list("args", flat=True)) == [[f"event-{ok.id}"]]
    assert DeadLetter.objects.get().event_id == bad.id


def test_reset_and_pause_take_effect(runner):
    first = eventjobs.publish_many([{"type": "t", "data": {"seq": i}} for i in range(3)])
    ledger = runner("ledger")
    drain(ledger)
    assert handled("ledger") == {e.id: 1 for e in first}

    call_command("consumer_group", "reset", "ledger", "--to-event", str(first[1].id))
    drain(ledger)
    assert handled("ledger") == {first[0].id: 1, first[1].id: 2, first[2].id: 2}

    call_command("consumer_group", "reset", "ledger", "--to-beginning")
    drain(ledger)
    assert set(handled("ledger").values()) == {3, 2}

    call_command("consumer_group", "pause", "ledger")
    later = eventjobs.publish("t")
    assert ledger.run_once() == PAUSED
    assert later.id not in handled("ledger")
    assert groups_status()["ledger"]["paused"] is True
    call_command("consumer_group", "resume", "ledger")
    drain(ledger)
    assert handled("ledger")[later.id] == 1

    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        before = cursor.fetchone()[0]
    newest = eventjobs.publish("t")
    call_command("consumer_group", "reset", "ledger", "--to-time", before.isoformat())
    drain(ledger)
    assert handled("ledger")[newest.id] == 2 or handled("ledger")[newest.id] == 1
    # never skips: the event created after T is handled again (or first) after the reset
    assert handled("ledger")[newest.id] >= 1


def test_latest_start_skips_the_past(runner):
    before = eventjobs.publish("t")
    # "latest" starts at the horizon: an event committed just before it was created but
    # not yet final (another session's transaction holds the horizon back) is delivered.
    wait_until(lambda: eventstore.horizon(django_connection("default")) > before.txid,
               message="the horizon to pass the first event")
    tail = runner("tail")
    after = eventjobs.publish("t")
    drain(tail)
    assert set(handled("tail")) == {after.id}


def test_lag_counts_matching_events_up_to_a_cap(runner, settings):
    runner("second")
    runner("ledger")
    eventjobs.publish_many([{"type": "order.x"}] * 3 + [{"type": "user.x"}] * 5)
    status = groups_status()
    assert status["second"]["lag"] == 3 and status["ledger"]["lag"] == 8
    settings.EVENTJOBS = {**settings.EVENTJOBS, "LAG_CAP": 5}
    status = groups_status()
    assert status["ledger"]["lag"] == 5 and status["ledger"]["lag_capped"] is True
    assert status["second"]["position"] == {"txid": "0", "event_id": 0}


def test_cursors_of_another_cluster_are_refused_until_translated(runner):
    # A restore copies txids of the old cluster: here far ahead of this one's counter.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO eventjobs_event (type, data, txid) VALUES "
                       "('t', '{\"seq\": 1}', '900000000001'), ('t', '{\"seq\": 2}', "
                       "'900000000002') RETURNING id")
        copied = [row[0] for row in cursor.fetchall()]
    ledger = runner("ledger")
    with transaction.atomic():
        controlstore.reset_group(django_connection("default"), group="ledger",
                               position=(900000000001, copied[0]))  # handled the first
    ledger.leave()  # the process stops; a restored cluster starts new ones
    ConsumerGroup.objects.filter(name="ledger").update(system_identifier=12345)
    with pytest.raises(ClusterMismatch, match="translate"):
        runner("ledger")
    new = eventjobs.publish("t", {"seq": 3})
    call_command("consumer_group", "translate")
    assert ConsumerGroup.objects.get(name="ledger").system_identifier != 12345
    again = runner("ledger")
    drain(again)
    assert handled("ledger") == {copied[1]: 1, new.id: 1}


def test_a_pause_between_a_final_failure_and_its_dead_letter_skips_nothing(runner, monkeypatch):
    # The events before the failing one are rolled back with it; a pause issued before
    # they are committed again must not let the dead letter move the cursor past them.
    e0, e1, bad = eventjobs.publish_many([
        {"type": "t", "data": {"seq": 0}}, {"type": "t", "data": {"seq": 1}},
        {"type": "t", "data": {"seq": 2, "fail_in": ["flaky"]}}])
    flaky = runner("flaky")
    Delivery.objects.create(group_id="flaky", event_id=bad.id, attempts=2)  # its last attempt
    original = eventstore.record_error

    def pause_meanwhile(*args, **kwargs):
        original(*args, **kwargs)
        call_command("consumer_group", "pause", "flaky")

    monkeypatch.setattr(eventstore, "record_error", pause_meanwhile)
    wait_final(e0, e1, bad)
    flaky.run_once()  # fails for the last time; the group is paused before it goes on
    monkeypatch.setattr(eventstore, "record_error", original)
    assert flaky.run_once() == PAUSED
    call_command("consumer_group", "resume", "flaky")
    drain(flaky)
    assert handled("flaky") == {e0.id: 1, e1.id: 1}
    letter = DeadLetter.objects.get()
    assert letter.event_id == bad.id and letter.attempts == 3 and "ValueError" in letter.error


@pytest.mark.parametrize("action", ["reset", "pause"])
def test_a_reset_or_pause_issued_while_a_batch_is_in_flight_wins(runner, monkeypatch, action):
    events = eventjobs.publish_many([{"type": "t", "data": {"seq": 1, "sleep": 0.5}},
                                     {"type": "t", "data": {"seq": 2}}])
    ledger = runner("ledger")
    started = threading.Event()
    original = consumers._handle

    def signal_start(group, event):
        started.set()
        original(group, event)

    monkeypatch.setattr(consumers, "_handle", signal_start)

    def batch():
        try:
            ledger.run_once()
        finally:
            connection.close()

    wait_final(*events)
    worker = threading.Thread(target=batch)
    worker.start()
    assert started.wait(10)
    args = ["--to-beginning"] if action == "reset" else []
    call_command("consumer_group", action, "ledger", *args)  # while the handler sleeps
    worker.join(10)
    cursors = list(Cursor.objects.filter(group_id="ledger").values_list("txid", "event_id"))
    if action == "reset":
        assert set(cursors) == {(0, 0)}  # the batch did not overwrite the reset
        drain(ledger)
        assert set(handled("ledger").values()) <= {1, 2}
        assert handled("ledger")[events[1].id] >= 1 and handled("ledger")[events[0].id] == 2
    else:
        assert ledger.run_once() == PAUSED
        before = handled("ledger")
        assert ledger.run_once() == PAUSED and handled("ledger") == before
        assert set(before.values()) == {1}


def test_a_concurrent_double_reprocess_handles_the_event_once(runner, monkeypatch):
    event = eventjobs.publish("t", {"fail_in": ["flaky"], "sleep": 0.3})
    drain(runner("flaky"))
    letter = DeadLetter.objects.get()
    monkeypatch.setattr(consumers, "FIXED", True)
    barrier = threading.Barrier(2)
    results = []

    def reprocess():
        try:
            barrier.wait(5)
            results.append(eventjobs.reprocess_dead_letters([letter.id]))
        finally:
            connection.close()

    threads = [threading.Thread(target=reprocess) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert handled("flaky") == {event.id: 1}
    assert sorted(len(r["resolved"]) for r in results) == [0, 1]
    assert DeadLetter.objects.get().status == "RESOLVED"


@pytest.mark.parametrize("prepare", [True, False])
def test_prepare_statements_setting_is_obeyed(runner, settings, monkeypatch, db_url, prepare):
    # Off (transaction-mode poolers): the hot queries are never prepared server-side and
    # the control connection never auto-prepares. On: the batch's statements are
    # prepared on the Django connection (through server-side-binding cursors).
    settings.EVENTJOBS = {**settings.EVENTJOBS, "PREPARE_STATEMENTS": prepare}
    seen = []
    original = eventstore._batch

    def spy(conn, name, params, prepare):
        seen.append((name, prepare))
        return original(conn, name, params, prepare)

    monkeypatch.setattr(eventstore, "_batch", spy)
    eventjobs.publish_many([{"type": "t", "data": {"seq": i}} for i in range(3)])
    drain(runner("ledger"))
    assert len(handled("ledger")) == 3
    assert {p for name, p in seen if name in ("lock_cursors", "read_events", "advance")} == \
        {prepare}
    prepared = django_connection("default").execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%eventjobs_read_events%%'"
    ).fetchone()[0]
    assert (prepared > 0) is prepare
    from eventjobs.db import connect, connection_params

    control = connect(connection_params("default"), "test")
    try:
        assert (control.prepare_threshold is None) is (not prepare)
    finally:
        control.close()


def test_stuck_horizon_is_recorded_reported_and_checked_without_seeing_the_holder(
        runner, db_url, monkeypatch):
    import psycopg

    from eventjobs import checks

    ledger = runner("ledger")
    # As without pg_read_all_stats: the holding session cannot be seen.
    monkeypatch.setattr(controlstore, "horizon_holder", lambda conn: None)
    holder = psycopg.connect(db_url, autocommit=False)
    try:
        xid = int(holder.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        event = eventjobs.publish("t", {"seq": 1})

        def recorded():
            ledger.heartbeat()
            group = ConsumerGroup.objects.get(name="ledger")
            return group if group.held_back_xid == xid else None

        group = wait_until(recorded, message="the stuck horizon to be recorded")
        since = group.held_back_since
        ledger.heartbeat()
        assert ConsumerGroup.objects.get(name="ledger").held_back_since == since  # kept
        held = wait_until(lambda: groups_status()["ledger"]["held_back_by"],
                          message="held_back_by")
        assert held["visible"] is False and held["xid"] == str(xid)
        assert held["since"] == since.isoformat()
        monkeypatch.setattr(checks, "HELD_BACK_WARNING_SECONDS", 0)
        warned = [m for m in checks.check_event_database(databases=["default"])
                  if m.id == "eventjobs.W006"]
        assert warned and str(xid) in warned[0].msg
        assert checks.check_event_database() == []  # plain `check` does not query
    finally:
        holder.rollback()
        holder.close()
    drain(ledger)
    assert handled("ledger") == {event.id: 1}
    assert not [m for m in checks.check_event_database(databases=["default"])
                if m.id == "eventjobs.W006"]
    ledger.heartbeat()
    assert ConsumerGroup.objects.get(name="ledger").held_back_since is None


def test_idle_in_transaction_timeout_off_is_warned():
    from eventjobs.checks import check_event_database

    with connection.cursor() as cursor:
        cursor.execute("SET idle_in_transaction_session_timeout = 0")
        assert "eventjobs.W005" in [m.id for m in check_event_database(databases=["default"])]
        cursor.execute("SET idle_in_transaction_session_timeout = '60s'")
        try:
            assert "eventjobs.W005" not in [m.id for m in
                                            check_event_database(databases=["default"])]
        finally:
            cursor.execute("RESET idle_in_transaction_session_timeout")


@pytest.mark.parametrize("synchronous", [False, True])
def test_batches_commit_without_waiting_for_the_wal_flush_unless_told(runner, settings,
                                                                      monkeypatch, synchronous):
    settings.EVENTJOBS = {**settings.EVENTJOBS, "BATCH_SYNCHRONOUS_COMMIT": synchronous}
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        session = cursor.fetchone()[0]
    seen = []
    original = consumers._handle

    def record_setting(group, event):
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen.append(cursor.fetchone()[0])
        original(group, event)

    monkeypatch.setattr(consumers, "_handle", record_setting)
    eventjobs.publish("t", {"seq": 1})
    drain(runner("ledger"))
    assert seen == [session if synchronous else "off"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == session  # transaction-local: the session is unchanged
