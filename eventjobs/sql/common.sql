-- SQL both halves use. Loaded by eventjobs/sql/__init__.py; executed by eventjobs/db.py.

-- name: clock
-- The database's clock: every time eventjobs stamps or compares comes from it.
SELECT now();
