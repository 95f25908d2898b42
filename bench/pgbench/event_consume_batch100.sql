BEGIN;
SELECT position AS pos FROM group_offsets WHERE name = 'bench' FOR UPDATE \gset
WITH e AS (SELECT id, type, data FROM events WHERE id > :pos ORDER BY id LIMIT 100),
     u AS (UPDATE group_offsets SET position = COALESCE((SELECT max(id) FROM e), :pos)
            WHERE name = 'bench')
SELECT * FROM e;
COMMIT;
