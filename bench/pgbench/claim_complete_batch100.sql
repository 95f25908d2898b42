WITH c AS (
  UPDATE jobs SET status = 1, started_at = now()
    FROM (SELECT id FROM jobs WHERE status = 0 ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) s
   WHERE jobs.id = s.id
  RETURNING jobs.id
) SELECT array_agg(id) AS ids FROM c \gset
UPDATE jobs SET status = 2, finished_at = now() WHERE id = ANY(:ids::bigint[]);
