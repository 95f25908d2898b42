-- Hot-path and control SQL of the event half. Each query has a name and a one-line why.
-- Loaded by eventjobs/sql/__init__.py; executed only by eventjobs/events/store.py.
-- Positions are (txid, event_id) pairs compared as rows, txids bound as %s::text::xid8
-- (psycopg speaks xid8 as text) and always ordered by the xid8 column itself.

-- name: publish
-- One round trip: insert, and (optionally) wake listening consumers at commit. The
-- NOTIFY payload is empty, so PostgreSQL folds all of a transaction's into one.
WITH ev AS (
    INSERT INTO eventjobs_event (type, key, key_hash, data, source)
    VALUES (%(type)s, %(key)s, %(key_hash)s, %(data)s::jsonb, %(source)s)
    RETURNING id, created_at, txid
)
SELECT id, created_at, txid::text AS txid_text,
       CASE WHEN %(notify)s THEN pg_notify('eventjobs_event', '') END
FROM ev;

-- name: publish_many
-- Bulk insert from one JSON array of [type, key, key_hash, data, source] items (one
-- parameter: cheaper to send than five typed arrays), in the given order; the NOTIFYs
-- fold into one (same channel, same empty payload, same transaction).
WITH ev AS (
    INSERT INTO eventjobs_event (type, key, key_hash, data, source)
    SELECT item.event ->> 0, item.event ->> 1, (item.event ->> 2)::int4, item.event -> 3,
           item.event ->> 4
    FROM jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS item(event, n)
    ORDER BY item.n
    RETURNING id, created_at, txid
)
SELECT id, created_at, txid::text AS txid_text,
       CASE WHEN %(notify)s THEN pg_notify('eventjobs_event', '') END
FROM ev ORDER BY id;

-- name: system_identifier
-- Identifies the cluster whose transaction ids the cursors hold (changes on restore).
SELECT system_identifier FROM pg_control_system();

-- name: horizon
-- Every transaction below this id has finished: rows below it are final.
SELECT pg_snapshot_xmin(pg_current_snapshot())::text;

-- name: create_group
INSERT INTO eventjobs_consumer_group (name, partitions, system_identifier, created_at, recent_errors)
VALUES (%(group)s, %(partitions)s, %(system_identifier)s, now(), '[]')
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: create_cursors
-- A new group starts at `position` in every partition. Both creators of a racing start
-- insert the same rows; the loser's are ignored.
INSERT INTO eventjobs_cursor (group_name, partition, txid, event_id, generation, paused, updated_at)
SELECT %(group)s, p, %(txid)s::text::xid8, %(event_id)s, 0, false, now()
FROM generate_series(0, %(partitions)s - 1) AS p
ON CONFLICT (group_name, partition) DO NOTHING;

-- name: load_group
SELECT partitions, system_identifier FROM eventjobs_consumer_group WHERE name = %(group)s;

-- name: first_event
SELECT id, txid::text FROM eventjobs_event ORDER BY txid, id LIMIT 1;

-- name: register_member
-- A consume process's membership in one group (its member id is per process and group,
-- so a process running several groups counts in each). The backend pid of its control
-- connection lets others see it die at once. Returns nothing once the group is gone
-- (`consumer_group forget`), instead of failing on the foreign key.
INSERT INTO eventjobs_group_member (id, group_name, host, pid, backend_pid, started_at, last_seen)
SELECT %(member)s, g.name, %(host)s, %(pid)s, pg_backend_pid(), now(), now()
FROM eventjobs_consumer_group g WHERE g.name = %(group)s
ON CONFLICT (id) DO UPDATE SET last_seen = now(), backend_pid = excluded.backend_pid
RETURNING id;

-- name: deregister_member
DELETE FROM eventjobs_group_member WHERE id = %(member)s;

-- name: live_members
-- Members seen within a lease whose control connection is still open; forgets the rest.
WITH gone AS (
    DELETE FROM eventjobs_group_member m
    WHERE m.group_name = %(group)s AND m.id <> %(member)s
      AND (m.last_seen < now() - make_interval(secs => %(lease)s)
           OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = m.backend_pid))
    RETURNING m.id
)
SELECT count(*) FROM eventjobs_group_member m
WHERE m.group_name = %(group)s AND m.id NOT IN (SELECT id FROM gone);

-- name: renew_leases
-- Heartbeat: keep the partitions we own. A partition missing from the result was taken
-- over (our lease expired); the next batch notices too, as its lock finds no row.
UPDATE eventjobs_cursor
SET lease_expires_at = now() + make_interval(secs => %(lease)s)
WHERE group_name = %(group)s AND owner = %(member)s
RETURNING partition;

-- name: claim_partitions
-- Take free partitions: unowned, lease expired, or whose owner's process is gone (its
-- member row forgotten or its control connection closed). SKIP LOCKED passes rows a
-- running batch holds, so a partition is never taken from under a batch.
WITH free AS (
    SELECT c.partition, c.owner AS previous_owner
    FROM eventjobs_cursor c
    LEFT JOIN eventjobs_group_member m ON m.id = c.owner
    WHERE c.group_name = %(group)s
      AND (c.owner IS NULL OR c.lease_expires_at < now() OR m.id IS NULL
           OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = m.backend_pid))
    ORDER BY c.partition
    LIMIT %(limit)s
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE eventjobs_cursor c
SET owner = %(member)s, lease_expires_at = now() + make_interval(secs => %(lease)s)
FROM free
WHERE c.group_name = %(group)s AND c.partition = free.partition
RETURNING c.partition, free.previous_owner;

-- name: release_partitions
-- Graceful hand-over (rebalance, shutdown): the next owner starts at our committed position.
UPDATE eventjobs_cursor SET owner = NULL, lease_expires_at = NULL
WHERE group_name = %(group)s AND owner = %(member)s AND partition = ANY(%(partitions)s);

-- name: lock_cursors
-- First statement of every batch: lock our cursor rows for the batch's transaction, so
-- no one can take a partition, reset or pause it while handlers run. Generation and
-- paused tell the runner whether a reset/pause happened since its last batch.
-- With `asynchronous`, the batch's COMMIT does not wait for its WAL flush: a database
-- crash can lose the last batches, but their handlers' writes and their position
-- advance are lost together (the events are handled again), and any later synchronous
-- commit (a job's outcome, a delivery count) flushes them first.
SELECT c.partition, c.txid::text, c.event_id, c.generation, c.paused
FROM eventjobs_cursor c,
     LATERAL (SELECT set_config('synchronous_commit', CASE WHEN %(asynchronous)s THEN 'off'
                                ELSE current_setting('synchronous_commit') END, true)) AS s
WHERE c.group_name = %(group)s AND c.owner = %(member)s
ORDER BY c.partition
FOR UPDATE OF c;

-- name: read_events
-- The next `limit` events after `position` that are final (below the horizon: every
-- transaction before it has ended, so nothing can still appear behind the cursor), in
-- (txid, id) order. eventjobs_read_events() (migration 0005) is an index scan on
-- (txid, id) that stops after `limit` rows whatever the statistics say, so a batch
-- costs the same on a never-analyzed table and however long the unread backlog is.
-- Rows come back in the function's order (a function scan keeps it).
SELECT e.id, e.txid::text, e.key_hash, e.type, e.key, e.data, e.source, e.created_at::text
FROM eventjobs_read_events(%(txid)s::text::xid8, %(event_id)s, %(limit)s) AS e;

-- name: read_events_partitions
-- As read_events, for a process that owns only some of the group's partitions: the
-- same window of the log (the scan never searches further for rows of ours, so its
-- cost cannot grow with the log), with the data of other partitions' rows left out.
-- The runner moves our positions past those rows.
SELECT e.id, e.txid::text, e.key_hash, e.type, e.key,
       CASE WHEN p.mine THEN e.data END, e.source, e.created_at::text
FROM eventjobs_read_events(%(txid)s::text::xid8, %(event_id)s, %(limit)s) AS e
CROSS JOIN LATERAL (
    SELECT coalesce(abs(e.key_hash::int8) %% %(n)s, 0) = ANY(%(partitions)s) AS mine) AS p;

-- name: read_events_unbounded
-- eventjobs.testing.run_consumers(): every event after `position` that this session
-- can see, its own uncommitted ones included (no horizon: only for tests, where
-- nothing else publishes meanwhile).
SELECT e.id, e.txid::text, e.key_hash, e.type, e.key, e.data, e.source, e.created_at::text
FROM eventjobs_event e
WHERE (e.txid, e.id) > (%(txid)s::text::xid8, %(event_id)s)
ORDER BY e.txid, e.id;

-- name: advance
-- Move our partitions to the batch's last read position, in the batch's transaction
-- (the handlers' writes commit with it, or neither does). Fenced by owner and
-- generation: a cursor reset or taken over meanwhile matches fewer rows.
UPDATE eventjobs_cursor
SET txid = %(txid)s::text::xid8, event_id = %(event_id)s, updated_at = now(),
    lease_expires_at = now() + make_interval(secs => %(lease)s)
WHERE group_name = %(group)s AND owner = %(member)s AND generation = %(generation)s
  AND partition = ANY(%(partitions)s);

-- name: resolve_dead_letters
-- Any successful handling of an event resolves its open dead letter, in the same transaction.
UPDATE eventjobs_deadletter
SET status = 'RESOLVED', resolved_at = now(), updated_at = now()
WHERE group_name = %(group)s AND status = 'OPEN' AND event_id = ANY(%(event_ids)s);

-- name: has_open_dead_letters
SELECT EXISTS (SELECT 1 FROM eventjobs_deadletter WHERE group_name = %(group)s AND status = 'OPEN');

-- name: count_delivery
-- Committed (autocommit) before a handler that failed before runs again: a handler
-- that kills its process still uses up its attempts.
INSERT INTO eventjobs_delivery (group_name, event_id, attempts, last_error, updated_at)
VALUES (%(group)s, %(event_id)s, 1, '', now())
ON CONFLICT (group_name, event_id)
DO UPDATE SET attempts = eventjobs_delivery.attempts + 1, updated_at = now()
RETURNING attempts;

-- name: delivery_error
UPDATE eventjobs_delivery SET last_error = %(error)s, updated_at = now()
WHERE group_name = %(group)s AND event_id = %(event_id)s;

-- name: delivery_last_error
SELECT last_error FROM eventjobs_delivery WHERE group_name = %(group)s AND event_id = %(event_id)s;

-- name: forget_deliveries
DELETE FROM eventjobs_delivery WHERE group_name = %(group)s AND event_id = ANY(%(event_ids)s);

-- name: dead_letter
-- Copy the event into the group's dead letters (retention cannot take the copy). One
-- open dead letter per (group, event): a repeat failure updates it.
INSERT INTO eventjobs_deadletter (
    group_name, event_id, event_type, event_key, event_data, event_source,
    event_created_at, event_txid, error, traceback, attempts, status, created_at, updated_at
)
SELECT %(group)s, e.id, e.type, e.key, e.data, e.source, e.created_at, e.txid,
       %(error)s, %(traceback)s, %(attempts)s, 'OPEN', now(), now()
FROM eventjobs_event e WHERE e.id = %(event_id)s
ON CONFLICT (group_name, event_id) WHERE status = 'OPEN'
DO UPDATE SET error = excluded.error, traceback = excluded.traceback,
              attempts = eventjobs_deadletter.attempts + excluded.attempts, updated_at = now()
RETURNING id;

-- name: record_error
-- Keep the group's 10 most recent errors, newest first, for eventjobs_status.
UPDATE eventjobs_consumer_group
SET recent_errors = (
    SELECT coalesce(jsonb_agg(x ORDER BY n), '[]'::jsonb)
    FROM jsonb_array_elements(jsonb_build_array(%(error)s::jsonb) || recent_errors)
         WITH ORDINALITY AS t(x, n)
    WHERE n <= 10)
WHERE name = %(group)s;

-- name: last_event
-- The newest event a burst run must reach (everything committed before it started).
SELECT txid::text, id FROM eventjobs_event ORDER BY txid DESC, id DESC LIMIT 1;

-- name: pending_partitions
-- Partitions of a group that still have events at or before `position` to handle.
SELECT c.partition
FROM eventjobs_cursor c
WHERE c.group_name = %(group)s
  AND EXISTS (
      SELECT 1 FROM eventjobs_event e
      WHERE (e.txid, e.id) > (c.txid, c.event_id)
        AND (e.txid, e.id) <= (%(txid)s::text::xid8, %(event_id)s)
        AND coalesce(abs(e.key_hash::int8) %% %(n)s, 0) = c.partition);

-- name: horizon_holder
-- The oldest transaction that has an xid: it holds pg_snapshot_xmin (cluster-wide).
-- Seeing other users' rows in full needs pg_read_all_stats.
SELECT pid, xact_start, backend_xid::text, state, usename, application_name, datname,
       left(query, 200), extract(epoch FROM clock_timestamp() - xact_start)::float8
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY age(backend_xid) DESC
LIMIT 1;

-- name: prepared_holder
SELECT gid, prepared, transaction::text, extract(epoch FROM clock_timestamp() - prepared)::float8
FROM pg_prepared_xacts ORDER BY age(transaction) DESC LIMIT 1;

-- name: cursors_of_group
SELECT partition, txid::text, event_id, generation, paused, owner, lease_expires_at
FROM eventjobs_cursor WHERE group_name = %(group)s ORDER BY partition;

-- name: group_lag
-- Events the group will still handle (matching its types), counted up to a cap.
SELECT count(*) FROM (
    SELECT 1
    FROM eventjobs_event e
    JOIN eventjobs_cursor c
      ON c.group_name = %(group)s AND c.partition = coalesce(abs(e.key_hash::int8) %% %(n)s, 0)
    WHERE (e.txid, e.id) > (%(txid)s::text::xid8, %(event_id)s)
      AND (e.txid, e.id) > (c.txid, c.event_id)
      AND (%(all_types)s OR e.type = ANY(%(types)s) OR e.type LIKE ANY(%(prefixes)s))
    LIMIT %(cap)s
) AS pending;

-- name: pending_for_new_group
-- For a group that never ran: how many of the first `cap` events of the log it will
-- handle, and how many were read (= cap: there may be more). Bounded work on any log.
SELECT count(*) FILTER (WHERE %(all_types)s OR e.type = ANY(%(types)s)
                               OR e.type LIKE ANY(%(prefixes)s)),
       count(*)
FROM (SELECT type FROM eventjobs_event ORDER BY txid, id LIMIT %(cap)s) AS e;

-- name: watch_horizon
-- Without pg_read_all_stats nobody can see who holds the horizon, so record the horizon
-- xid a group's committed events wait behind and when it was first seen there (the same
-- xmin means the same transaction is still open). Writes only when that changes.
WITH w AS (
    SELECT CASE WHEN EXISTS (
               SELECT 1 FROM eventjobs_event e
               WHERE (e.txid, e.id) > (%(txid)s::text::xid8, %(event_id)s)
                 AND e.txid >= pg_snapshot_xmin(pg_current_snapshot()))
           THEN pg_snapshot_xmin(pg_current_snapshot()) END AS horizon
), changed AS (
    UPDATE eventjobs_consumer_group g
    SET held_back_xid = w.horizon,
        held_back_since = CASE WHEN w.horizon IS NULL THEN NULL ELSE now() END
    FROM w
    WHERE g.name = %(group)s AND g.held_back_xid IS DISTINCT FROM w.horizon
    RETURNING g.held_back_xid, g.held_back_since
)
SELECT held_back_xid::text, held_back_since,
       extract(epoch FROM now() - held_back_since)::float8 FROM changed
UNION ALL
SELECT held_back_xid::text, held_back_since,
       extract(epoch FROM now() - held_back_since)::float8
FROM eventjobs_consumer_group
WHERE name = %(group)s AND NOT EXISTS (SELECT 1 FROM changed);

-- name: stuck_groups
-- Groups whose committed events have waited behind the same horizon for longer than
-- `seconds` (and still do): the system check's warning.
SELECT name, held_back_xid::text, held_back_since
FROM eventjobs_consumer_group
WHERE held_back_since < now() - make_interval(secs => %(seconds)s)
  AND held_back_xid = pg_snapshot_xmin(pg_current_snapshot())
ORDER BY name;

-- name: lock_group
-- Wait for a running batch of the group (it holds these rows) before a reset, pause or
-- reprocess compares positions: an unlocked comparison would see the position before
-- the batch. In partition order, like lock_cursors, so two lockers cannot deadlock.
SELECT partition FROM eventjobs_cursor WHERE group_name = %(group)s ORDER BY partition
FOR UPDATE;

-- name: replay_pending
-- Reprocess, under lock_group: is the dead letter's event still ahead of its partition's
-- position (a reset replays it)? Then the group's own delivery handles and resolves it,
-- and a reprocess must not run it as well.
SELECT EXISTS (
    SELECT 1
    FROM eventjobs_event e
    JOIN eventjobs_consumer_group g ON g.name = %(group)s
    JOIN eventjobs_cursor c
      ON c.group_name = g.name AND c.partition = coalesce(abs(e.key_hash::int8) %% g.partitions, 0)
    WHERE e.id = %(event_id)s AND (e.txid, e.id) > (c.txid, c.event_id));

-- name: move_cursors
-- eventjobs.testing.run_consumers(): move the given partitions to `position` in the
-- caller's transaction (no owner: nothing else consumes while a test runs them).
UPDATE eventjobs_cursor
SET txid = %(txid)s::text::xid8, event_id = %(event_id)s, updated_at = now()
WHERE group_name = %(group)s AND partition = ANY(%(partitions)s);

-- name: reset_group
-- Replay/skip: move every partition of a group; the generation bump makes running
-- processes reload (it waits for a running batch, which holds the rows' locks).
-- Partitions already at the target are left alone, so a second identical reset (a
-- double click) changes nothing.
UPDATE eventjobs_cursor
SET txid = %(txid)s::text::xid8, event_id = %(event_id)s, generation = generation + 1,
    updated_at = now()
WHERE group_name = %(group)s
  AND (txid, event_id) IS DISTINCT FROM (%(txid)s::text::xid8, %(event_id)s)
RETURNING partition;

-- name: count_redeliveries
-- Events a reset to `position` would deliver again: after the target, at or before the
-- partition's current position. Counted up to a cap (a reset to the beginning of a big
-- log would otherwise count it all).
SELECT count(*) FROM (
    SELECT 1
    FROM eventjobs_event e
    JOIN eventjobs_cursor c
      ON c.group_name = %(group)s AND c.partition = coalesce(abs(e.key_hash::int8) %% %(n)s, 0)
    WHERE (e.txid, e.id) > (%(txid)s::text::xid8, %(event_id)s)
      AND (e.txid, e.id) <= (c.txid, c.event_id)
    LIMIT %(cap)s
) AS again;

-- name: forget_group_deliveries
DELETE FROM eventjobs_delivery WHERE group_name = %(group)s;

-- name: pause_group
-- Pause or resume every partition; partitions already in that state are left alone.
UPDATE eventjobs_cursor SET paused = %(paused)s, generation = generation + 1, updated_at = now()
WHERE group_name = %(group)s AND paused IS DISTINCT FROM %(paused)s
RETURNING partition;

-- name: event_position
SELECT txid::text, id FROM eventjobs_event WHERE id = %(event_id)s;

-- name: position_at_time
-- The first position holding an event created at or after T: everything from there on
-- is delivered again (never skips; may repeat a few created just before T).
SELECT txid::text, id FROM eventjobs_event WHERE created_at >= %(at)s ORDER BY txid, id LIMIT 1;

-- name: slowest_cursor
SELECT group_name, txid::text, event_id FROM eventjobs_cursor ORDER BY txid, event_id LIMIT 1;

-- name: allow_prune
-- Transaction-local: the append-only trigger lets this transaction's DELETEs through.
SELECT set_config('eventjobs.pruning', 'on', true);

-- name: prune_batch
-- Delete one batch of old, final events at or before the slowest group's position, read
-- in this statement (a reset or a new group since the last batch holds it back at once).
-- Every group with cursors counts, paused ones too (pausing is not abandoning).
WITH slowest AS (
    SELECT txid, event_id FROM eventjobs_cursor ORDER BY txid, event_id LIMIT 1
), doomed AS (
    SELECT id FROM eventjobs_event
    WHERE created_at < %(cutoff)s
      AND txid < pg_snapshot_xmin(pg_current_snapshot())
      AND (%(force)s OR NOT EXISTS (SELECT 1 FROM slowest)
           OR (txid, id) <= (SELECT txid, event_id FROM slowest))
    ORDER BY txid, id
    LIMIT %(limit)s
)
DELETE FROM eventjobs_event e USING doomed WHERE e.id = doomed.id;

-- name: count_blocked
-- Old events kept because a group has not handled them yet.
SELECT count(*) FROM (
    SELECT 1 FROM eventjobs_event
    WHERE created_at < %(cutoff)s AND (txid, id) > (%(txid)s::text::xid8, %(event_id)s)
    LIMIT 1000000) AS kept;

-- name: allow_rebase
SELECT set_config('eventjobs.rebasing', 'on', true);

-- name: first_unhandled
-- After a restore: the smallest event id a partition has not handled yet (old order).
SELECT coalesce(min(e.id), (SELECT coalesce(max(id), 0) + 1 FROM eventjobs_event))
FROM eventjobs_event e
WHERE (e.txid, e.id) > (%(txid)s::text::xid8, %(event_id)s);

-- name: rebase_events
-- After a restore, txids copied from the old cluster lie ahead of this cluster's
-- counter: move them below every live transaction (keeping id order among them).
UPDATE eventjobs_event SET txid = '2'::xid8
WHERE txid >= pg_snapshot_xmax(pg_current_snapshot());

-- name: translate_cursor
UPDATE eventjobs_cursor
SET txid = '2'::xid8, event_id = %(event_id)s, generation = generation + 1, updated_at = now()
WHERE group_name = %(group)s AND partition = %(partition)s;

-- name: set_system_identifier
UPDATE eventjobs_consumer_group SET system_identifier = %(system_identifier)s
WHERE name = %(group)s;


-- name: listen
-- Wake-ups for idle consumers: publish sends an empty payload on this channel.
LISTEN eventjobs_event;
