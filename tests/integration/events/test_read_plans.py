"""The batch read keeps its index plan whatever the statistics say, and costs the same
however long the unread backlog is (issue 9). Proven on a never-analyzed table of 100k
events: a copy of eventjobs_event in a scratch schema, put first on the search_path for
one transaction (the read function finds its table through the search_path, like every
Django query), rolled back at the end."""

import pytest
from django.db import connection, transaction

from eventjobs.db import django_connection
from eventjobs.events import store
from eventjobs.events.partitions import START
from eventjobs.events.window import Read

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = 100_000
LIMIT = 1000  # BATCH_SIZE's default

# The read before migration 0005: the planner's own choice on this table.
PLAIN_READ = f"""
SELECT e.id, e.type, e.key, e.data, e.source, e.created_at, e.txid, e.key_hash
FROM eventjobs_event e
WHERE (e.txid, e.id) > ('0'::xid8, 0) AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.txid, e.id LIMIT {LIMIT}"""


def _fresh_table(cursor, spread: bool) -> None:
    """100k committed-looking events (txids 3..103, far below any horizon), never analyzed:
    keyless with a spread hash, or keyless as published before spreading (partition 0)."""
    cursor.execute("CREATE SCHEMA fresh_plan")
    cursor.execute("CREATE TABLE fresh_plan.eventjobs_event "
                   "(LIKE public.eventjobs_event INCLUDING ALL)")
    cursor.execute(f"""
        INSERT INTO fresh_plan.eventjobs_event (id, type, key, key_hash, data, txid)
        SELECT g, 't', NULL, {'(random() * 2147483647)::int' if spread else 'NULL'},
               '{{"i": 1}}'::jsonb, (3 + g / 1000)::text::xid8
        FROM generate_series(1, {EVENTS}) AS g""")
    cursor.execute("SET LOCAL search_path = fresh_plan, public")
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'eventjobs_event'::regclass")
    assert cursor.fetchone()[0] == -1  # never analyzed, never vacuumed


def _reads_of(cursor) -> tuple[int, int]:
    """(sequential scans, rows fetched through the index) of the fresh table so far, in
    this transaction."""
    cursor.execute("SELECT seq_scan, coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                   "WHERE relid = 'eventjobs_event'::regclass")
    return cursor.fetchone()


def _nested_plans(raw, run) -> str:
    """The plans of the statements `run` executes, function bodies included."""
    notices: list[str] = []
    raw.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        for name, value in (("log_min_duration", "0"), ("log_nested_statements", "on"),
                            ("log_level", "notice")):
            cursor.execute(f"SET LOCAL auto_explain.{name} = {value}")
    try:
        run()
    finally:
        raw._notice_handlers.clear()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL auto_explain.log_min_duration = -1")
    return "\n".join(notices)


@pytest.mark.parametrize("spread", [True, False])
def test_the_read_is_an_index_scan_of_one_window_on_a_never_analyzed_table(spread):
    raw = django_connection("default")
    with transaction.atomic(), connection.cursor() as cursor:
        _fresh_table(cursor, spread)
        cursor.execute("EXPLAIN " + PLAIN_READ)
        plain = "\n".join(row[0] for row in cursor.fetchall())
        assert "Seq Scan" in plain or "Bitmap" in plain  # what the planner picks alone

        plans = _nested_plans(raw, lambda: store.read_events(raw, Read(START, None, LIMIT, 8)))
        assert "Index Scan using eventjobs_event_txid_id_idx" in plans, plans  # the copy's name
        for bad in ("Seq Scan", "Bitmap", "Sort"):
            assert bad not in plans, plans

        # Whole group, a process owning some partitions (with keyless rows all in
        # partition 0, none of them is its), from the start of a 100k backlog and near
        # its end: each read fetches one window of rows, never a scan of the backlog.
        before = _reads_of(cursor)
        windows = []
        for after in (START, (102, EVENTS - 1500)):
            for partitions in (None, (1, 2, 3)):
                events, end = store.read_events(raw, Read(after, partitions, LIMIT, 8))
                windows.append((len(events), end))
                now = _reads_of(cursor)
                assert now[0] == before[0], "a sequential scan"
                assert now[1] - before[1] <= LIMIT + 1, (after, partitions, now[1] - before[1])
                before = now
        whole, some = windows[0], windows[1]
        assert whole[0] == LIMIT and some[1] == whole[1]  # same window, ours only
        assert some[0] == 0 if not spread else 0 < some[0] < LIMIT
        transaction.set_rollback(True)
