INSERT INTO jobs (queue, status, payload) SELECT 'default', 0, '{}' FROM generate_series(1, 1000);
