"""The consumers' read of the log as a function whose plan cannot degrade.

A batch reads the next events after a position in (txid, id) order, at most N of them.
The right plan is an index scan on eventjobs_event_position that stops after N rows.
On a table just filled and never analyzed (exactly what a burst of publishing looks
like) the planner instead chose a sequential scan and a sort of the whole unread log
for every batch (36,878 events/s instead of ~175,000 on 100k events), and a bitmap scan
of every remaining row once given a range. Planner settings attached to the function
leave the ordered index scan as its only plan, for this one query, whatever the
statistics say; nothing else in the session is affected.
"""

from django.db import migrations

READ_EVENTS = """
CREATE FUNCTION eventjobs_read_events(after_txid xid8, after_id bigint, max_rows integer)
RETURNS SETOF eventjobs_event
LANGUAGE sql STABLE PARALLEL SAFE
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
    SELECT * FROM eventjobs_event e
    WHERE (e.txid, e.id) > (after_txid, after_id)
      AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.txid, e.id
    LIMIT max_rows
$$;
"""

DROP_READ_EVENTS = "DROP FUNCTION IF EXISTS eventjobs_read_events(xid8, bigint, integer);"


class Migration(migrations.Migration):

    dependencies = [
        ("eventjobs", "0004_permissions_and_capital_statuses"),
    ]

    operations = [
        migrations.RunSQL(READ_EVENTS, DROP_READ_EVENTS),
    ]
