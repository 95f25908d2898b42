-- The minimal tables behind the pgbench ceilings (same shapes as peers-baseline.md).
DROP TABLE IF EXISTS jobs, events, group_offsets;
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    status smallint NOT NULL,          -- 0 ready, 1 running, 2 done
    payload jsonb,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX jobs_ready ON jobs (id) WHERE status = 0;
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    type text NOT NULL,
    data jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE group_offsets (name text PRIMARY KEY, position bigint NOT NULL);
