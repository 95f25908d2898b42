INSERT INTO jobs (queue, status, payload) VALUES ('default', 0, '{}');
