"""Fill the job and event tables with a million rows in SQL (generate_series), shaped like a
busy production database: mostly finished jobs spread over a week, a backlog (some of it
waiting under a limit), failures, many event types."""

from __future__ import annotations

JOBS = """
INSERT INTO eventjobs_job (
    task_path, backend, queue, priority, takes_context, args, kwargs, status, run_after,
    enqueued_at, started_at, last_attempted_at, finished_at, max_attempts, retry_backoff,
    attempt, worker_ids, errors, return_value, limit_key, concurrency)
SELECT 'tests.testapp.tasks.task_' || (i %% 20), 'default',
       CASE WHEN i %% 3 = 0 THEN 'other' ELSE 'default' END, 0, false,
       jsonb_build_array(i, 'some argument text'), '{}'::jsonb, s.status,
       CASE WHEN s.status = 'SCHEDULED' THEN now() + interval '1 hour' ELSE t.at END,
       t.at, t.at, t.at,
       CASE WHEN s.status IN ('SUCCESSFUL', 'FAILED') THEN t.at + interval '2 seconds' END,
       3, 2.0, CASE WHEN s.status IN ('READY', 'LIMITED', 'SCHEDULED') THEN 0 ELSE 1 END,
       CASE WHEN s.status IN ('READY', 'LIMITED', 'SCHEDULED') THEN '[]'::jsonb
            ELSE '["bulkhost:1:abcd"]'::jsonb END,
       CASE WHEN s.status = 'FAILED' THEN jsonb_build_array(jsonb_build_object(
            'exception_class_path', 'builtins.ValueError', 'message', 'boom',
            'traceback', 'Traceback (most recent call last):\nValueError: boom',
            'attempt', 1, 'worker_id', 'bulkhost:1:abcd', 'at', t.at)) ELSE '[]'::jsonb END,
       CASE WHEN s.status = 'SUCCESSFUL' THEN to_jsonb(i) END,
       CASE WHEN s.status = 'LIMITED' THEN 'tests.testapp.tasks.task_' || (i %% 20) END,
       CASE WHEN s.status = 'LIMITED' THEN 1 END
FROM generate_series(1, %(n)s) AS i,
     LATERAL (SELECT CASE WHEN i %% 100 < 90 THEN 'SUCCESSFUL' WHEN i %% 100 < 95 THEN 'FAILED'
                          WHEN i %% 100 < 97 THEN 'READY' WHEN i %% 100 < 98 THEN 'LIMITED'
                          WHEN i %% 100 < 99 THEN 'SCHEDULED'
                          ELSE 'RUNNING' END AS status) AS s,
     LATERAL (SELECT now() - make_interval(secs => (%(n)s - i) * 604800.0 / %(n)s) AS at) AS t
"""

EVENTS = """
INSERT INTO eventjobs_event (type, key, key_hash, data, source, created_at)
SELECT 'type.' || (i %% 50), 'key-' || (i %% 5000), hashtext('key-' || (i %% 5000)),
       jsonb_build_object('seq', i, 'text', 'some event data of a realistic size'),
       CASE WHEN i %% 2 = 0 THEN 'web' ELSE 'api' END,
       now() - make_interval(secs => (%(n)s - i) * 604800.0 / %(n)s)
FROM generate_series(1, %(n)s) AS i
"""


def fill_jobs(cursor, n: int) -> None:
    """n jobs: 90 % SUCCESSFUL, 5 % FAILED, 2 % READY, 1 % waiting under a concurrency
    limit (LIMITED), 1 % scheduled, 1 % RUNNING."""
    cursor.execute(JOBS, {"n": n})
    cursor.execute("ANALYZE eventjobs_job")


def fill_events(cursor, n: int) -> None:
    """n events of 50 types over the last week."""
    cursor.execute(EVENTS, {"n": n})
    cursor.execute("ANALYZE eventjobs_event")
