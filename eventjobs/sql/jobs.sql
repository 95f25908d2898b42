-- Hot-path SQL of the job half. Each query has a name and a one-line why.
-- Loaded by eventjobs/sql/__init__.py; executed only by eventjobs/jobs/store.py.
--
-- Statuses: READY jobs are in the claim index. SCHEDULED (not due yet) and LIMITED (due,
-- waiting for room under the task's concurrency= / rate_limit=) are READY to users but
-- stay out of it; promote_due and promote_limited move them in. A job with a limit_key
-- never becomes READY except through promote_limited (which is how a rate counts every
-- start of a retried job: see there).

-- name: enqueue
-- One round trip: insert, and wake listening workers at commit (NOTIFY is
-- transactional, so a rolled-back enqueue wakes nobody). A future run_after goes to
-- SCHEDULED so it stays out of the claim index until due; a limited task's job to LIMITED
-- (an idle worker woken by the NOTIFY promotes it if its key has room).
WITH job AS (
    INSERT INTO eventjobs_job (
        task_path, backend, queue, priority, takes_context, args, kwargs, status,
        run_after, enqueued_at, max_attempts, retry_backoff, timeout, attempt, worker_ids, errors,
        snoozes, unique_key, limit_key, concurrency, rate_count, rate_window
    )
    VALUES (
        %(task_path)s, %(backend)s, %(queue)s, %(priority)s, %(takes_context)s,
        %(args)s::jsonb, %(kwargs)s::jsonb,
        CASE WHEN %(run_after)s::timestamptz > now() THEN 'SCHEDULED'
             WHEN %(limit_key)s::text IS NOT NULL THEN 'LIMITED' ELSE 'READY' END,
        coalesce(%(run_after)s::timestamptz, now()), now(),
        %(max_attempts)s, %(retry_backoff)s, %(timeout)s, 0, '[]', '[]',
        '[]', %(unique_key)s, %(limit_key)s, %(concurrency)s, %(rate_count)s, %(rate_window)s
    )
    RETURNING id, status, queue, enqueued_at, run_after
)
SELECT id, status, enqueued_at, run_after,
       CASE WHEN %(notify)s AND status IN ('READY', 'LIMITED')
            THEN pg_notify('eventjobs_job', queue) END
FROM job;

-- name: enqueue_unique
-- As enqueue, for a unique task: the partial unique index on unique_key (over the statuses
-- of a job still waiting or running) makes a second concurrent enqueue insert nothing,
-- after waiting for the first one's transaction to end; the caller then reads that job.
WITH job AS (
    INSERT INTO eventjobs_job (
        task_path, backend, queue, priority, takes_context, args, kwargs, status,
        run_after, enqueued_at, max_attempts, retry_backoff, timeout, attempt, worker_ids, errors,
        snoozes, unique_key, limit_key, concurrency, rate_count, rate_window
    )
    VALUES (
        %(task_path)s, %(backend)s, %(queue)s, %(priority)s, %(takes_context)s,
        %(args)s::jsonb, %(kwargs)s::jsonb,
        CASE WHEN %(run_after)s::timestamptz > now() THEN 'SCHEDULED'
             WHEN %(limit_key)s::text IS NOT NULL THEN 'LIMITED' ELSE 'READY' END,
        coalesce(%(run_after)s::timestamptz, now()), now(),
        %(max_attempts)s, %(retry_backoff)s, %(timeout)s, 0, '[]', '[]',
        '[]', %(unique_key)s, %(limit_key)s, %(concurrency)s, %(rate_count)s, %(rate_window)s
    )
    ON CONFLICT DO NOTHING
    RETURNING id, status, queue, enqueued_at, run_after
)
SELECT id, status, enqueued_at, run_after,
       CASE WHEN %(notify)s AND status IN ('READY', 'LIMITED')
            THEN pg_notify('eventjobs_job', queue) END
FROM job;

-- name: unique_waiting
-- The job a unique enqueue collided with (still waiting or running).
SELECT id, status, queue, priority, args, kwargs, enqueued_at, started_at, finished_at,
       last_attempted_at, errors, worker_ids, return_value
FROM eventjobs_job
WHERE unique_key = %(unique_key)s AND status IN ('READY', 'SCHEDULED', 'LIMITED', 'RUNNING');

-- name: unique_recent
-- unique_for=: the newest job of this key that succeeded within that many seconds.
SELECT id, status, queue, priority, args, kwargs, enqueued_at, started_at, finished_at,
       last_attempted_at, errors, worker_ids, return_value
FROM eventjobs_job
WHERE unique_key = %(unique_key)s AND status = 'SUCCESSFUL'
  AND finished_at > now() - make_interval(secs => %(seconds)s)
ORDER BY finished_at DESC
LIMIT 1;

-- name: enqueue_many
-- Bulk insert from one JSON array of [args, kwargs, limit_key] items. Returns one row (the ids in
-- order and the shared enqueue time) instead of a row per job; one NOTIFY per queue
-- survives (PostgreSQL folds duplicates within a transaction).
WITH job AS (
    INSERT INTO eventjobs_job (
        task_path, backend, queue, priority, takes_context, args, kwargs, status,
        run_after, enqueued_at, max_attempts, retry_backoff, timeout, attempt, worker_ids, errors,
        snoozes, limit_key, concurrency, rate_count, rate_window
    )
    SELECT %(task_path)s, %(backend)s, %(queue)s, %(priority)s, %(takes_context)s,
           item.pair -> 0, item.pair -> 1,
           CASE WHEN %(run_after)s::timestamptz > now() THEN 'SCHEDULED'
                WHEN item.pair ->> 2 IS NOT NULL THEN 'LIMITED' ELSE 'READY' END,
           coalesce(%(run_after)s::timestamptz, now()), now(),
           %(max_attempts)s, %(retry_backoff)s, %(timeout)s, 0, '[]', '[]',
           '[]', item.pair ->> 2, %(concurrency)s, %(rate_count)s, %(rate_window)s
    FROM jsonb_array_elements(%(items)s::jsonb) WITH ORDINALITY AS item(pair, n)
    ORDER BY item.n
    RETURNING id, status, queue
)
SELECT array_agg(id ORDER BY id), now(),
       CASE WHEN %(notify)s AND bool_or(status IN ('READY', 'LIMITED'))
            THEN pg_notify('eventjobs_job', min(queue)) END
FROM job;

-- name: claim_queue
-- Take up to `limit` due jobs of one queue, highest priority first, then oldest. The
-- index (queue, priority DESC, id) WHERE status = 'READY' makes this a short index scan
-- whatever waits in other queues. SKIP LOCKED lets workers claim side by side; the
-- statement commits at once, so no transaction or row lock is held while jobs run. The
-- claim appends the worker id (Django's attempts) and stamps the start times, which the
-- outcome corrects to when the job actually started (a job may wait in a child's batch
-- for up to ~50 ms). A paused queue (eventjobs_queue) yields nothing: one primary-key
-- probe, evaluated once per statement, strict even for a worker that missed the pause.
WITH picked AS (
    SELECT id FROM eventjobs_job
    WHERE status = 'READY' AND queue = %(queue)s
      AND NOT EXISTS (SELECT 1 FROM eventjobs_queue WHERE name = %(queue)s AND paused)
    ORDER BY priority DESC, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE eventjobs_job AS job
SET status = 'RUNNING',
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => %(lease)s),
    attempt = job.attempt + 1,
    worker_ids = job.worker_ids || to_jsonb(%(worker_id)s::text),
    started_at = coalesce(job.started_at, now()),
    last_attempted_at = now()
FROM picked
WHERE job.id = picked.id
  -- A lost claim only leaves the job claimable again: do not wait for the WAL flush.
  AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
RETURNING job.id, job.task_path, job.backend, job.queue, job.priority, job.takes_context,
          job.args, job.kwargs, job.run_after, job.enqueued_at, job.started_at,
          job.last_attempted_at, job.max_attempts, job.retry_backoff, job.timeout,
          job.attempt, job.worker_ids, job.errors, job.lease_token;

-- name: claim_queues
-- As claim_queue for several queues: one short index scan per queue (a plain
-- `queue = ANY(...)` would sort every ready row of those queues), merged by priority.
-- Rows locked by a queue's scan but not taken are unlocked when the statement commits.
-- Paused queues are left out (one primary-key probe per queue).
WITH picked AS (
    SELECT ready.id
    FROM unnest(%(queues)s::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, priority FROM eventjobs_job
        WHERE status = 'READY' AND queue = q.name
        ORDER BY priority DESC, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS ready
    WHERE NOT EXISTS (SELECT 1 FROM eventjobs_queue AS paused
                      WHERE paused.name = q.name AND paused.paused)
    ORDER BY ready.priority DESC, ready.id
    LIMIT %(limit)s
)
UPDATE eventjobs_job AS job
SET status = 'RUNNING',
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => %(lease)s),
    attempt = job.attempt + 1,
    worker_ids = job.worker_ids || to_jsonb(%(worker_id)s::text),
    started_at = coalesce(job.started_at, now()),
    last_attempted_at = now()
FROM picked
WHERE job.id = picked.id
  -- A lost claim only leaves the job claimable again: do not wait for the WAL flush.
  AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
RETURNING job.id, job.task_path, job.backend, job.queue, job.priority, job.takes_context,
          job.args, job.kwargs, job.run_after, job.enqueued_at, job.started_at,
          job.last_attempted_at, job.max_attempts, job.retry_backoff, job.timeout,
          job.attempt, job.worker_ids, job.errors, job.lease_token;

-- name: ready_queues
-- The queues that have ready jobs, for a worker of every queue: a skip scan of the
-- ready index (one index probe per distinct queue, not a scan of every ready row).
WITH RECURSIVE q(name) AS (
    (SELECT queue FROM eventjobs_job WHERE status = 'READY' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM eventjobs_job
            WHERE status = 'READY' AND queue > q.name ORDER BY queue LIMIT 1)
    FROM q WHERE q.name IS NOT NULL
)
SELECT name FROM q WHERE name IS NOT NULL;

-- name: finish_successes
-- Record a batch of successful attempts, sent as one JSON array (cheaper to build than
-- five typed arrays). The lease token fences: a worker whose lease expired (and whose
-- job was rescued) matches no row and cannot overwrite the outcome.
UPDATE eventjobs_job AS job
SET status = 'SUCCESSFUL',
    return_value = done.return_value,
    started_at = CASE WHEN job.attempt = 1 THEN to_timestamp(done.started_at)
                      ELSE job.started_at END,
    last_attempted_at = to_timestamp(done.started_at),
    finished_at = to_timestamp(done.finished_at),
    lease_token = NULL,
    lease_expires_at = NULL
FROM jsonb_to_recordset(%(done)s::jsonb)
     AS done(id bigint, token uuid, return_value jsonb, started_at float8, finished_at float8)
WHERE job.id = done.id AND job.lease_token = done.token
  -- Outcomes wait for the WAL flush, although the worker's session does not (see
  -- jobstore.connect): set for this statement's own transaction, in the same round trip.
  AND (SELECT set_config('synchronous_commit', 'on', true)) = 'on'
RETURNING job.id, job.limit_key;

-- name: record_failures
-- Record failed attempts (an exception, a lost worker, a timeout), sent as one JSON
-- array. The completer decided each one's next status (eventjobs/jobs/completer.py):
-- SCHEDULED or READY to retry after `delay` seconds (LIMITED instead of READY for a
-- limited task), or FAILED for good. Fenced by the lease token like finish_successes;
-- durable like it.
UPDATE eventjobs_job AS job
SET status = CASE WHEN failed.status = 'READY' AND job.limit_key IS NOT NULL THEN 'LIMITED'
                  ELSE failed.status END,
    errors = job.errors || jsonb_build_array(failed.error),
    run_after = CASE WHEN failed.status = 'FAILED' THEN job.run_after
                     ELSE now() + make_interval(secs => failed.delay) END,
    started_at = CASE WHEN job.attempt = 1 AND failed.started_at IS NOT NULL
                      THEN to_timestamp(failed.started_at) ELSE job.started_at END,
    last_attempted_at = coalesce(to_timestamp(failed.started_at), job.last_attempted_at),
    finished_at = CASE WHEN failed.status = 'FAILED' THEN now() END,
    lease_token = NULL,
    lease_expires_at = NULL
FROM jsonb_to_recordset(%(failed)s::jsonb)
     AS failed(id bigint, token uuid, status varchar, error jsonb, delay float8,
               started_at float8)
WHERE job.id = failed.id AND job.lease_token = failed.token
  AND (SELECT set_config('synchronous_commit', 'on', true)) = 'on'  -- durable: see above
RETURNING job.id, job.status, job.queue, job.limit_key;

-- name: release
-- Give back claimed jobs without charging an attempt (graceful shutdown, prefetched
-- jobs never started, a task path that does not import yet): undo the claim.
UPDATE eventjobs_job AS job
SET status = CASE WHEN back.delay > 0 THEN 'SCHEDULED'
                  WHEN job.limit_key IS NOT NULL THEN 'LIMITED' ELSE 'READY' END,
    run_after = now() + make_interval(secs => back.delay),
    attempt = job.attempt - 1,
    worker_ids = job.worker_ids - (-1),
    started_at = CASE WHEN job.attempt = 1 THEN NULL ELSE job.started_at END,
    lease_token = NULL,
    lease_expires_at = NULL
FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[], %(delays)s::float8[]) AS back(id, token, delay)
WHERE job.id = back.id AND job.lease_token = back.token AND job.status = 'RUNNING'
RETURNING job.id, job.status, job.queue, job.limit_key;

-- name: release_unreported
-- A child died between its claim's commit and its report of it (the claim was in flight):
-- jobs still RUNNING under its worker id that nobody knows of never started. Undo their
-- claim like a release, uncharged. `known`: the ids whose outcome is decided elsewhere.
UPDATE eventjobs_job AS job
SET status = CASE WHEN job.limit_key IS NOT NULL THEN 'LIMITED' ELSE 'READY' END,
    run_after = now(),
    attempt = job.attempt - 1,
    worker_ids = job.worker_ids - (-1),
    started_at = CASE WHEN job.attempt = 1 THEN NULL ELSE job.started_at END,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE job.status = 'RUNNING' AND job.worker_ids ->> -1 = %(worker_id)s
  AND NOT job.id = ANY(%(known)s::bigint[])
RETURNING job.id, job.status, job.queue, job.limit_key;

-- name: snooze
-- `raise eventjobs.Snooze(seconds)`: undo the claim like a release (no attempt charged,
-- no error), due again after `delay`, and keep a record of it in `snoozes`. Fenced and
-- durable like an outcome.
UPDATE eventjobs_job AS job
SET status = CASE WHEN back.delay > 0 THEN 'SCHEDULED'
                  WHEN job.limit_key IS NOT NULL THEN 'LIMITED' ELSE 'READY' END,
    run_after = now() + make_interval(secs => back.delay),
    attempt = job.attempt - 1,
    worker_ids = job.worker_ids - (-1),
    started_at = CASE WHEN job.attempt = 1 THEN NULL ELSE job.started_at END,
    snoozes = job.snoozes || jsonb_build_array(jsonb_build_object(
        'at', to_timestamp(back.at), 'seconds', back.delay, 'worker_id', job.worker_ids ->> -1)),
    lease_token = NULL,
    lease_expires_at = NULL
FROM jsonb_to_recordset(%(snoozed)s::jsonb) AS back(id bigint, token uuid, delay float8, at float8)
WHERE job.id = back.id AND job.lease_token = back.token AND job.status = 'RUNNING'
  AND (SELECT set_config('synchronous_commit', 'on', true)) = 'on'  -- durable: see above
RETURNING job.id, job.status, job.queue, job.limit_key;

-- name: renew_leases
-- Heartbeat: push the leases of the jobs a runworker's children hold. Rows that do not
-- match were rescued from us: the caller tells the child its lease is lost.
UPDATE eventjobs_job AS job
SET lease_expires_at = now() + make_interval(secs => %(lease)s)
FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS held(id, token)
WHERE job.id = held.id AND job.lease_token = held.token AND job.status = 'RUNNING'
RETURNING job.id;

-- name: expired_leases
-- Jobs whose lease expired (their worker died or froze), locked for the rescuer's
-- transaction: the completer records WorkerLost for each (retry or FAILED) before it
-- commits. Decided on the job row's own lease_expires_at, never on a join to the worker
-- table, which may be pruned or reused. SKIP LOCKED: rescuers on other hosts take others.
SELECT id, lease_token, attempt, max_attempts, retry_backoff, queue, task_path,
       worker_ids ->> -1 AS worker_id, lease_expires_at
FROM eventjobs_job
WHERE status = 'RUNNING' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT 1000
FOR UPDATE SKIP LOCKED;

-- name: promote_due
-- Move scheduled jobs whose time has come into the claim index (a limited task's to
-- LIMITED, where promote_limited admits them).
WITH due AS (
    SELECT id FROM eventjobs_job
    WHERE status = 'SCHEDULED' AND run_after <= now()
    ORDER BY run_after
    LIMIT 5000
    FOR UPDATE SKIP LOCKED
)
UPDATE eventjobs_job AS job
SET status = CASE WHEN job.limit_key IS NOT NULL THEN 'LIMITED' ELSE 'READY' END
FROM due WHERE job.id = due.id
RETURNING job.queue, job.limit_key;

-- name: limited_keys
-- The limit keys that have jobs waiting for room: a skip scan of the LIMITED index (one
-- probe per key, however many jobs wait; it stops at `limit` keys).
WITH RECURSIVE k(key) AS (
    (SELECT limit_key FROM eventjobs_job WHERE status = 'LIMITED' ORDER BY limit_key LIMIT 1)
    UNION ALL
    SELECT (SELECT limit_key FROM eventjobs_job
            WHERE status = 'LIMITED' AND limit_key > k.key ORDER BY limit_key LIMIT 1)
    FROM k WHERE k.key IS NOT NULL
)
SELECT key FROM k WHERE key IS NOT NULL
LIMIT %(limit)s;

-- name: lock_limit_key
-- Promoters of one key take turns (per transaction), so two never both see the same room.
-- The first number keeps these locks apart from any other advisory lock of the project.
SELECT pg_advisory_xact_lock(2071116321, hashtext(%(key)s));

-- name: promote_limited
-- Admit a key's LIMITED jobs up to its room, in claim order. Run under lock_limit_key, as
-- a new statement so that its snapshot sees every claim and outcome committed before the
-- lock was granted. Room: concurrency minus the key's READY and RUNNING jobs; for a rate,
-- its count minus the jobs admitted but not started (READY) and every start within the
-- window. The limits are the first waiting job's (they are the same unless code changed).
-- A start is a claim (it stamps last_attempted_at, which the outcome corrects to when the
-- attempt began). The job row keeps only its latest one, and a retry's claim overwrites it;
-- but a limited job is claimed again only after this statement admits it again, so here,
-- before that claim, the start it made is copied to eventjobs_rate_start. Each start is
-- then counted once: the latest from its job row (not READY: a READY job counts as the
-- start it is about to make), the earlier ones from eventjobs_rate_start. The claim
-- statements are unchanged, and the copies are made only for retries of rate-limited jobs.
WITH head AS (
    SELECT concurrency, rate_count, rate_window FROM eventjobs_job
    WHERE status = 'LIMITED' AND limit_key = %(key)s
    ORDER BY priority DESC, id
    LIMIT 1
), room AS (
    SELECT least(
        head.concurrency - (SELECT count(*) FROM eventjobs_job
                            WHERE limit_key = %(key)s AND status IN ('READY', 'RUNNING')),
        head.rate_count - (SELECT count(*) FROM eventjobs_job
                           WHERE limit_key = %(key)s AND status = 'READY')
                        - (SELECT count(*) FROM eventjobs_job
                           WHERE limit_key = %(key)s AND rate_count IS NOT NULL
                             AND last_attempted_at > now() - make_interval(secs => head.rate_window)
                             AND status <> 'READY')
                        - (SELECT count(*) FROM eventjobs_rate_start
                           WHERE limit_key = %(key)s
                             AND started_at > now() - make_interval(secs => head.rate_window))
    ) AS n
    FROM head
), picked AS (
    SELECT id FROM eventjobs_job
    WHERE status = 'LIMITED' AND limit_key = %(key)s
    ORDER BY priority DESC, id
    LIMIT greatest((SELECT n FROM room), 0)
    FOR UPDATE SKIP LOCKED
), admitted AS (
    UPDATE eventjobs_job AS job SET status = 'READY'
    FROM picked WHERE job.id = picked.id
    RETURNING job.id, job.queue, job.limit_key, job.rate_count, job.last_attempted_at
), earlier AS (
    -- The start an admitted job made before (none on its first admission; one outside the
    -- window no longer counts). ON CONFLICT: a job admitted twice without a claim between
    -- (cancelled while READY, then retried) copies the same start once.
    INSERT INTO eventjobs_rate_start (limit_key, started_at, job_id)
    SELECT admitted.limit_key, admitted.last_attempted_at, admitted.id
    FROM admitted CROSS JOIN head
    WHERE admitted.rate_count IS NOT NULL
      AND admitted.last_attempted_at > now() - make_interval(secs => head.rate_window)
    ON CONFLICT DO NOTHING
), expired AS (
    -- The key's starts that left the window (keys no longer promoted: prune_rate_starts).
    DELETE FROM eventjobs_rate_start
    WHERE limit_key = %(key)s
      AND started_at <= now() - make_interval(secs => (SELECT rate_window FROM head))
)
SELECT queue FROM admitted;

-- name: seconds_until_next_due
-- How long an idle worker may sleep before a scheduled job of its queues (NULL: every
-- queue) is due.
SELECT extract(epoch FROM min(run_after) - now())::float8
FROM eventjobs_job
WHERE status = 'SCHEDULED' AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s));

-- name: notify_queue
SELECT pg_notify('eventjobs_job', %(queue)s);

-- name: register_worker
INSERT INTO eventjobs_worker (id, host, pid, queues, started_at, last_seen, running)
VALUES (%(id)s, %(host)s, %(pid)s, to_jsonb(%(queues)s::text[]), now(), now(), 0)
ON CONFLICT (id) DO UPDATE SET last_seen = now();

-- name: touch_worker
-- Heartbeat of the process itself; re-registers if maintenance pruned the row.
INSERT INTO eventjobs_worker (id, host, pid, queues, started_at, last_seen, running)
VALUES (%(id)s, %(host)s, %(pid)s, to_jsonb(%(queues)s::text[]), now(), now(), %(running)s)
ON CONFLICT (id) DO UPDATE SET last_seen = now(), running = excluded.running;

-- name: deregister_worker
DELETE FROM eventjobs_worker WHERE id = %(id)s;

-- name: prune_workers
-- Forget processes silent for several leases; their jobs are rescued by lease expiry.
DELETE FROM eventjobs_worker WHERE last_seen < now() - make_interval(secs => %(silence)s);

-- name: prune_rate_starts
-- Earlier starts older than the longest window a rate can have: promote_limited deletes a
-- key's own as it goes, this catches the keys that have no job waiting any more. A
-- sequential scan of a table that holds only recent retries of rate-limited jobs.
DELETE FROM eventjobs_rate_start WHERE started_at < now() - make_interval(secs => %(age)s);


-- name: pending_counts
-- What a burst run leaves behind, for its exit line.
SELECT count(*) FILTER (WHERE status = 'SCHEDULED' AND attempt = 0) AS deferred,
       count(*) FILTER (WHERE status = 'SCHEDULED' AND attempt > 0) AS retrying,
       count(*) FILTER (WHERE status = 'RUNNING') AS leased,
       count(*) FILTER (WHERE status IN ('READY', 'LIMITED')) AS ready  -- LIMITED: READY
FROM eventjobs_job
WHERE (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s))
  AND status IN ('SCHEDULED', 'RUNNING', 'READY', 'LIMITED');

-- name: retry_failed
-- Manual retry of a FAILED job (the jobs' dead-letter queue): back to READY (LIMITED for
-- a limited task) with `extra` more attempts, history kept. Only one of two concurrent
-- retries matches. A unique job whose duplicate waits is left FAILED (see retry_blocked).
UPDATE eventjobs_job AS job
SET status = CASE WHEN job.limit_key IS NOT NULL THEN 'LIMITED' ELSE 'READY' END,
    run_after = now(), finished_at = NULL,
    max_attempts = greatest(job.max_attempts, job.attempt) + %(extra)s
WHERE job.id = ANY(%(ids)s) AND job.status = 'FAILED'
  AND NOT EXISTS (SELECT 1 FROM eventjobs_job AS dup
                  WHERE job.unique_key IS NOT NULL AND dup.unique_key = job.unique_key
                    AND dup.status IN ('READY', 'SCHEDULED', 'LIMITED', 'RUNNING'))
RETURNING job.id, CASE WHEN %(notify)s THEN pg_notify('eventjobs_job', job.queue) END;

-- name: retry_blocked
-- FAILED unique jobs that cannot be retried because a duplicate waits: (id, duplicate).
SELECT job.id, dup.id
FROM eventjobs_job AS job
JOIN eventjobs_job AS dup
  ON dup.unique_key = job.unique_key
 AND dup.status IN ('READY', 'SCHEDULED', 'LIMITED', 'RUNNING')
WHERE job.id = ANY(%(ids)s) AND job.status = 'FAILED' AND job.unique_key IS NOT NULL;

-- name: cancel_waiting
-- Cancel jobs that have not started: FAILED with a JobCancelled error. Running jobs
-- are left alone (a job is never killed half-way by a cancel).
UPDATE eventjobs_job
SET status = 'FAILED', finished_at = now(),
    errors = errors || jsonb_build_array(jsonb_build_object(
        'exception_class_path', 'eventjobs.exceptions.JobCancelled',
        'traceback', 'eventjobs.exceptions.JobCancelled: ' || %(reason)s,
        'message', %(reason)s, 'attempt', attempt, 'at', now()))
WHERE id = ANY(%(ids)s) AND status IN ('READY', 'SCHEDULED', 'LIMITED')
RETURNING id;

-- name: prune_finished
-- Delete one batch of finished jobs of one status older than the cut-off. Small
-- batches keep each statement's locks and WAL short on a busy table.
-- The filter is repeated outside: a row retried (FAILED -> READY) while we wait for its
-- lock is re-checked against its new version and kept.
DELETE FROM eventjobs_job
WHERE id IN (
    SELECT id FROM eventjobs_job
    WHERE status = %(status)s::varchar AND finished_at < now() - make_interval(secs => %(age)s)
    LIMIT %(batch)s
)
AND status = %(status)s::varchar AND finished_at < now() - make_interval(secs => %(age)s);

-- name: name_session
-- A worker child shares Django's connection with its tasks: name it for pg_stat_activity.
SELECT set_config('application_name', %(name)s, false);

-- name: listen
-- Wake-ups for idle workers: enqueue and retries send the queue name on this channel.
LISTEN eventjobs_job;

-- name: set_queue_paused
-- Pause or resume a queue (the row is created on first use). Claims read it in SQL.
INSERT INTO eventjobs_queue (name, paused, updated_at)
VALUES (%(name)s, %(paused)s, now())
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = now();

-- name: queue_states
SELECT name, paused, updated_at FROM eventjobs_queue ORDER BY name;

-- name: sync_schedule
-- A runworker registers a periodic schedule at start. The last tick is kept; when the
-- spec changed it moves to the new spec's latest tick (never backwards, so a tick is
-- never enqueued twice), so a changed schedule does not fire at once for a "missed" tick.
INSERT INTO eventjobs_schedule (name, task_path, spec, timezone, args, kwargs, last_tick,
                                next_tick, updated_at)
VALUES (%(name)s, %(task_path)s, %(spec)s, %(timezone)s, %(args)s::jsonb, %(kwargs)s::jsonb,
        %(last_tick)s, %(next_tick)s, now())
ON CONFLICT (name) DO UPDATE
SET task_path = excluded.task_path, args = excluded.args, kwargs = excluded.kwargs,
    last_tick = CASE WHEN eventjobs_schedule.spec = excluded.spec
                      AND eventjobs_schedule.timezone = excluded.timezone
                     THEN eventjobs_schedule.last_tick
                     ELSE greatest(eventjobs_schedule.last_tick, excluded.last_tick) END,
    spec = excluded.spec, timezone = excluded.timezone,
    next_tick = excluded.next_tick, updated_at = now();

-- name: claim_tick
-- The compare-and-set that makes each tick one job: only the first runworker to move
-- last_tick forward to this tick gets a row back, and enqueues it in the same transaction.
UPDATE eventjobs_schedule
SET last_tick = %(tick)s, next_tick = %(next_tick)s, updated_at = now()
WHERE name = %(name)s AND (last_tick IS NULL OR last_tick < %(tick)s)
  AND (SELECT set_config('synchronous_commit', 'on', true)) = 'on'  -- durable, like outcomes
RETURNING last_tick;

-- name: record_tick_job
UPDATE eventjobs_schedule SET last_job_id = %(job_id)s WHERE name = %(name)s;

-- name: schedules
SELECT name, task_path, spec, timezone, last_tick, next_tick, last_job_id
FROM eventjobs_schedule ORDER BY name;
