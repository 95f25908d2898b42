"""The event log on real PostgreSQL: publishing, append-only, positions, retention."""

import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction

import eventjobs
from eventjobs.db import connect, connection_params, django_connection
from eventjobs.events import controlstore
from eventjobs.events import store as eventstore
from eventjobs.events.retention import prune
from eventjobs.events.window import Read
from eventjobs.exceptions import InvalidPayload
from eventjobs.models import Event as EventRow
from tests.integration.events.helpers import drain, runner_fixture, wait_until  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_publish_exists_iff_the_transaction_commits():
    with transaction.atomic():
        kept = eventjobs.publish("order.created", {"n": 1}, key="o-1", source="shop")
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = eventjobs.publish("order.created", {"n": 2})
        raise RuntimeError("roll back")
    assert kept.id and isinstance(kept.txid, int) and kept.created_at
    assert kept.data == {"n": 1} and kept.key == "o-1" and kept.source == "shop"
    rows = list(EventRow.objects.values_list("id", "type", "key", "data", "source", "txid"))
    assert rows == [(kept.id, "order.created", "o-1", {"n": 1}, "shop", kept.txid)]
    assert lost.id not in [r[0] for r in rows]


def test_publish_many_is_one_statement_in_order(django_assert_num_queries):
    with django_assert_num_queries(1):
        events = eventjobs.publish_many(
            [{"type": "a", "data": {"i": i}, "key": f"k{i}"} for i in range(50)])
    assert [e.data["i"] for e in events] == list(range(50))
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert len({e.txid for e in events}) == 1
    assert eventjobs.publish_many([]) == []


def test_publish_many_stores_tuples_as_lists_and_each_field_in_its_column():
    events = eventjobs.publish_many([{"type": "a", "data": {"pair": (1, 2)}, "key": "k",
                                      "source": "shop"}, {"type": "b"}])
    assert events[0].data == {"pair": (1, 2)}  # what the caller passed
    rows = list(EventRow.objects.order_by("id").values_list("type", "key", "data", "source"))
    assert rows == [("a", "k", {"pair": [1, 2]}, "shop"), ("b", None, None, None)]


def test_bad_event_writes_nothing_and_leaves_the_transaction_usable():
    with transaction.atomic():
        with pytest.raises(InvalidPayload):
            eventjobs.publish("t", {"bad": "\x00"})
        with pytest.raises(InvalidPayload):
            eventjobs.publish_many([{"type": "ok"}, {"type": "t", "key": 5}])
        eventjobs.publish("after", None)
    assert list(EventRow.objects.values_list("type", flat=True)) == ["after"]


def test_the_database_refuses_update_and_delete_except_from_the_pruner():
    event = eventjobs.publish("t", {"a": 1})
    for sql in ("UPDATE eventjobs_event SET type = 'x'", "DELETE FROM eventjobs_event"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('eventjobs.pruning', 'on', true)")
        cursor.execute("DELETE FROM eventjobs_event WHERE id = %s", [event.id])
    assert not EventRow.objects.exists()
    # The flag was transaction-local.
    eventjobs.publish("t2")
    with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM eventjobs_event")


def test_reader_orders_txids_numerically_across_a_digit_change(runner):
    # Rows as if published by transactions 100 and 99: by text "100" < "99", by number it is
    # the other way round. Both are below the horizon on any cluster, however new: initdb
    # alone uses several hundred transaction ids.
    horizon = eventstore.horizon(django_connection("default"))
    assert horizon > 100, horizon
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO eventjobs_event (type, data, txid) VALUES "
                       "('t', '{\"seq\": 2}', '100'), ('t', '{\"seq\": 1}', '99') "
                       "RETURNING id")
        later, earlier = [row[0] for row in cursor.fetchall()]
    conn = django_connection("default")
    with transaction.atomic():
        rows, end = eventstore.read_events(conn, Read((99, earlier - 1), None, 10, 4))
        assert [e.id for e in rows] == [earlier, later] and end == (100, later)
        rows, _ = eventstore.read_events(conn, Read((99, earlier), None, 10, 4))
        assert [e.id for e in rows] == [later]
    ledger = runner("ledger")
    drain(ledger)
    from tests.testapp.models import EventLedger

    assert list(EventLedger.objects.order_by("id").values_list("event_id", flat=True)) == \
        [earlier, later]
    assert min(ledger.owned.values()) == (100, later)


def test_retention_never_passes_the_slowest_group_unless_forced(runner, caplog):
    old = eventjobs.publish_many([{"type": "t", "data": {"i": i}} for i in range(10)])
    ledger = runner("ledger")
    second = runner("second")  # its types match nothing here, but it still reads past them
    drain(ledger)
    # Make `second` the slow one: it has handled only the first 4.
    with transaction.atomic():
        controlstore.reset_group(django_connection("default"), group="second",
                               position=old[3].position)
    conn = connect(connection_params("default"), "test prune")
    try:
        result = prune(conn, older_than=timedelta(0), batch_size=3)
        assert result.deleted == 4
        assert result.blocking_group == "second" and result.kept == 6
        # Its warning says where the group is in words, not as a Python dict.
        [kept] = [r.getMessage() for r in caplog.records if "kept 6 event(s)" in r.getMessage()]
        assert f"group second has not handled them yet (it is at after event #{old[3].id} " \
            f"(transaction {old[3].txid}))" in kept, kept
        assert sorted(EventRow.objects.values_list("id", flat=True)) == [e.id for e in old[4:]]
        forced = prune(conn, older_than=timedelta(0), force=True)
        assert forced.deleted == 6 and not EventRow.objects.exists()
    finally:
        conn.close()
    # Ids keep increasing after a purge.
    assert eventjobs.publish("t").id > old[-1].id
    del second


def test_prune_events_command_names_the_blocking_group(runner, capsys):
    from django.core.management import call_command

    eventjobs.publish_many([{"type": "t"} for _ in range(3)])
    runner("ledger")  # created at the beginning, handled nothing
    call_command("prune_events", "--older-than", "0s")
    out = capsys.readouterr().out
    assert "deleted 0" in out and "group ledger" in out
    call_command("consumer_group", "forget", "ledger")
    call_command("prune_events", "--older-than", "0s")
    assert "deleted 3" in capsys.readouterr().out


def test_an_open_transaction_holds_delivery_back_and_is_reported(runner, db_url):
    from eventjobs.events.monitoring import groups_status

    ledger = runner("ledger")
    holder = psycopg.connect(db_url, autocommit=False)
    try:
        holder_pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        holder.execute("SELECT pg_current_xact_id()")  # takes an xid, holds the horizon
        event = eventjobs.publish("t", {"seq": 1})  # committed after the holder began
        drain(ledger, wait=False)
        from tests.testapp.models import EventLedger

        assert not EventLedger.objects.exists()  # held back, not skipped
        status = wait_until(lambda: groups_status()["ledger"]["held_back_by"],
                            message="held_back_by")
        assert status["pid"] == holder_pid and status["since"]
        assert groups_status()["ledger"]["lag"] == 1
    finally:
        holder.rollback()
        holder.close()
    drain(ledger)
    assert list(EventLedger.objects.values_list("event_id", flat=True)) == [event.id]
    assert groups_status()["ledger"]["held_back_by"] is None




def test_a_paused_group_still_holds_retention_back(runner, capsys):
    from django.core.management import call_command

    first = eventjobs.publish_many([{"type": "order.x"} for _ in range(5)])
    ledger, second = runner("ledger"), runner("second")
    drain(ledger)
    drain(second)
    call_command("consumer_group", "pause", "second")  # pausing is not abandoning
    later = eventjobs.publish_many([{"type": "order.x"} for _ in range(3)])
    drain(ledger)
    drain(second)
    call_command("prune_events", "--older-than", "0s")
    out = capsys.readouterr().out
    assert "deleted 5" in out and "group second" in out
    assert sorted(EventRow.objects.values_list("id", flat=True)) == [e.id for e in later]
    del first


def test_keyless_events_spread_over_partitions_and_old_ones_stay_in_partition_0(runner):
    from collections import Counter

    from eventjobs.events.partitions import partition_of
    from tests.testapp.models import EventLedger

    new = eventjobs.publish_many([{"type": "t", "data": {"i": i}} for i in range(200)])
    one = eventjobs.publish("t")
    assert all(e.key_hash is not None for e in [*new, one])
    stored = dict(EventRow.objects.values_list("id", "key_hash"))
    assert Counter(partition_of(stored[e.id], 4) for e in new).keys() == {0, 1, 2, 3}
    # As published before keyless events were spread: no hash at all (partition 0).
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO eventjobs_event (type, data) SELECT 't', '{}' "
                       "FROM generate_series(1, 20) RETURNING id")
        old = [row[0] for row in cursor.fetchall()]
    a, b = runner("ledger"), runner("ledger")  # two processes share the group
    a.heartbeat()  # gives back what b takes
    expected = {e: 1 for e in [*(e.id for e in new), one.id, *old]}

    def both_ran():
        for r in (a, b):  # as a consume process's loop does
            if time.monotonic() >= r.next_heartbeat:
                r.heartbeat()
            r.run_once()
        return len(EventLedger.objects.all()) >= len(expected)

    wait_until(both_ran, message="the two runners to handle every event")
    assert {len(a.owned), len(b.owned)} == {2}
    counts = Counter(EventLedger.objects.values_list("event_id", flat=True))
    assert counts == expected


@pytest.mark.django_db(transaction=True)
def test_migration_0005_applies_and_reverts():
    from django.core.management import call_command

    call_command("migrate", "eventjobs", "0004", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regproc('eventjobs_read_events')")
        assert cursor.fetchone()[0] is None
    call_command("migrate", "eventjobs", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regproc('eventjobs_read_events')")
        assert cursor.fetchone()[0] is not None


def test_eventjobs_connections_name_themselves_even_when_the_project_names_its_own():
    # DATABASES OPTIONS {"application_name": ...} used to make connect() fail with
    # "got multiple values for keyword argument 'application_name'".
    conn = connect({**connection_params("default"), "application_name": "myproject"},
                   "eventjobs consume test")
    try:
        assert conn.execute("SHOW application_name").fetchone()[0] == "eventjobs consume test"
    finally:
        conn.close()
