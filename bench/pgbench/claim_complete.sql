UPDATE jobs SET status = 1, started_at = now()
 WHERE id = (SELECT id FROM jobs WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
 RETURNING id \gset
UPDATE jobs SET status = 2, finished_at = now() WHERE id = :id;
