-- Hot-path SQL of the job half. Each query has a name and a one-line why.
-- Loaded by eventjobs/queries.py; executed only by eventjobs/jobstore.py.

-- name: enqueue
-- One round trip: insert, and wake listening workers at commit (NOTIFY is
-- transactional, so a rolled-back enqueue wakes nobody). A future run_after goes to
-- SCHEDULED so it stays out of the claim index until due.
WITH job AS (
    INSERT INTO eventjobs_job (
        task_path, backend, queue, priority, takes_context, args, kwargs, status,
        run_after, enqueued_at, max_attempts, retry_backoff, timeout, attempt, worker_ids, errors
    )
    VALUES (
        %(task_path)s, %(backend)s, %(queue)s, %(priority)s, %(takes_context)s,
        %(args)s::jsonb, %(kwargs)s::jsonb,
        CASE WHEN %(run_after)s::timestamptz > now() THEN 'SCHEDULED' ELSE 'READY' END,
        coalesce(%(run_after)s::timestamptz, now()), now(),
        %(max_attempts)s, %(retry_backoff)s, %(timeout)s, 0, '[]', '[]'
    )
    RETURNING id, status, queue, enqueued_at, run_after
)
SELECT id, status, enqueued_at, run_after,
       CASE WHEN %(notify)s AND status = 'READY' THEN pg_notify('eventjobs_job', queue) END
FROM job;

-- name: enqueue_many
-- Bulk insert from one JSON array of [args, kwargs] pairs. Returns one row (the ids in
-- order and the shared enqueue time) instead of a row per job; one NOTIFY per queue
-- survives (PostgreSQL folds duplicates within a transaction).
WITH job AS (
    INSERT INTO eventjobs_job (
        task_path, backend, queue, priority, takes_context, args, kwargs, status,
        run_after, enqueued_at, max_attempts, retry_backoff, timeout, attempt, worker_ids, errors
    )
    SELECT %(task_path)s, %(backend)s, %(queue)s, %(priority)s, %(takes_context)s,
           item.pair -> 0, item.pair -> 1,
           CASE WHEN %(run_after)s::timestamptz > now() THEN 'SCHEDULED' ELSE 'READY' END,
           coalesce(%(run_after)s::timestamptz, now()), now(),
           %(max_attempts)s, %(retry_backoff)s, %(timeout)s, 0, '[]', '[]'
    FROM jsonb_array_elements(%(items)s::jsonb) WITH ORDINALITY AS item(pair, n)
    ORDER BY item.n
    RETURNING id, status, queue
)
SELECT array_agg(id ORDER BY id), now(),
       CASE WHEN %(notify)s AND bool_or(status = 'READY')
            THEN pg_notify('eventjobs_job', min(queue)) END
FROM job;

-- name: claim_queue
-- Take up to `limit` due jobs of one queue, highest priority first, then oldest. The
-- index (queue, priority DESC, id) WHERE status = 'READY' makes this a short index scan
-- whatever waits in other queues. SKIP LOCKED lets workers claim side by side; the
-- statement commits at once, so no transaction or row lock is held while jobs run. The
-- claim appends the worker id (Django's attempts) and stamps the start times, which the
-- outcome corrects to when the job actually started (a job may wait in a child's batch
-- for up to ~50 ms).
WITH picked AS (
    SELECT id FROM eventjobs_job
    WHERE status = 'READY' AND queue = %(queue)s
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
RETURNING job.id;

-- name: record_failures
-- Record failed attempts (an exception, a lost worker, a timeout), sent as one JSON
-- array. The completer decided each one's next status (eventjobs/jobs/completer.py):
-- SCHEDULED or READY to retry after `delay` seconds, or FAILED for good. Fenced by the
-- lease token like finish_successes; durable like it.
UPDATE eventjobs_job AS job
SET status = failed.status,
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
RETURNING job.id, job.status, job.queue;

-- name: release
-- Give back claimed jobs without charging an attempt (graceful shutdown, prefetched
-- jobs never started, a task path that does not import yet): undo the claim.
UPDATE eventjobs_job AS job
SET status = CASE WHEN back.delay > 0 THEN 'SCHEDULED' ELSE 'READY' END,
    run_after = now() + make_interval(secs => back.delay),
    attempt = job.attempt - 1,
    worker_ids = job.worker_ids - (-1),
    started_at = CASE WHEN job.attempt = 1 THEN NULL ELSE job.started_at END,
    lease_token = NULL,
    lease_expires_at = NULL
FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[], %(delays)s::float8[]) AS back(id, token, delay)
WHERE job.id = back.id AND job.lease_token = back.token AND job.status = 'RUNNING'
RETURNING job.id, job.queue;

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
-- Move scheduled jobs whose time has come into the claim index.
WITH due AS (
    SELECT id FROM eventjobs_job
    WHERE status = 'SCHEDULED' AND run_after <= now()
    ORDER BY run_after
    LIMIT 5000
    FOR UPDATE SKIP LOCKED
)
UPDATE eventjobs_job AS job SET status = 'READY'
FROM due WHERE job.id = due.id
RETURNING job.queue;

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


-- name: pending_counts
-- What a burst run leaves behind, for its exit line.
SELECT count(*) FILTER (WHERE status = 'SCHEDULED' AND attempt = 0) AS deferred,
       count(*) FILTER (WHERE status = 'SCHEDULED' AND attempt > 0) AS retrying,
       count(*) FILTER (WHERE status = 'RUNNING') AS leased,
       count(*) FILTER (WHERE status = 'READY') AS ready
FROM eventjobs_job
WHERE (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s))
  AND status IN ('SCHEDULED', 'RUNNING', 'READY');

-- name: retry_failed
-- Manual retry of a FAILED job (the jobs' dead-letter queue): back to READY with
-- `extra` more attempts, history kept. Only one of two concurrent retries matches.
UPDATE eventjobs_job
SET status = 'READY', run_after = now(), finished_at = NULL,
    max_attempts = greatest(max_attempts, attempt) + %(extra)s
WHERE id = ANY(%(ids)s) AND status = 'FAILED'
RETURNING id, CASE WHEN %(notify)s THEN pg_notify('eventjobs_job', queue) END;

-- name: cancel_waiting
-- Cancel jobs that have not started: FAILED with a JobCancelled error. Running jobs
-- are left alone (a job is never killed half-way by a cancel).
UPDATE eventjobs_job
SET status = 'FAILED', finished_at = now(),
    errors = errors || jsonb_build_array(jsonb_build_object(
        'exception_class_path', 'eventjobs.exceptions.JobCancelled',
        'traceback', 'eventjobs.exceptions.JobCancelled: ' || %(reason)s,
        'message', %(reason)s, 'attempt', attempt, 'at', now()))
WHERE id = ANY(%(ids)s) AND status IN ('READY', 'SCHEDULED')
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
