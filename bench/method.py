"""results.md as a whole: the tables (report.py) and the method, written from the run's
configuration so that the text says what this run did."""

from __future__ import annotations

import json

import report


def _sizes(cfg: dict, key: str) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in cfg[key].items())


def method_notes(cfg: dict) -> list[str]:
    return [
        f"- Passes: {cfg['passes']}. Every system runs in every pass, order rotated between "
        "passes; a cell is the median over passes (min–max), a target the median of the "
        "per-pass values, each taken from figures of the same pass.",
        "- **How progress is observed.** Nothing polls a system's tables while it works. "
        "Workers that can exit when the queue is empty do so and are waited for: eventjobs "
        "`runworker --burst` / `consume --burst`, PgQueuer `pgq run --mode drain`, "
        "Procrastinate `worker --one-shot`, django-tasks-db `db_worker --batch`, the Redis "
        "consumer's `--burst`. First start and last finish are read afterwards from each "
        "system's own records: eventjobs started_at / finished_at, pgqueuer_log (first "
        "'picked', last 'successful'), procrastinate_events (first 'started', last "
        "'succeeded'), DBTaskResult started_at / finished_at; database times are put on the "
        "harness's clock by a measured offset. Celery has neither: its task's one Redis INCR "
        "records the time of the first and of the N-th completion, and the harness blocks on "
        "the latter (BLPOP). Consumers note the time they handle their first event, once per "
        "process.",
        "- **Enqueue / publish 1-by-1**: "
        f"{cfg['n_enq']:,} jobs / {cfg['n_pub']:,} events, each call its own transaction "
        "(or round trip), timed in-process after 20 warm-up calls. **Bulk**: the system's "
        "own bulk API, 1,000 per call (Redis: pipelines of 1,000 XADD). The pgbench ceiling "
        "beside both is one single-row INSERT + commit, and one 1,000-row INSERT + commit.",
        "- **Drain as a user runs it**: N jobs enqueued one by one in one transaction "
        "(Procrastinate's sync defer() and Celery's delay() each commit alone), no ANALYZE; "
        "then two worker processes started together, each with its default options "
        "(eventjobs: `runworker --burst`, nothing else; peers: as below); "
        f"N = {_sizes(cfg, 'n_udrain')}. *spawn -> done*: eventjobs until both processes "
        "exited; peers until their last job finished (their queue is empty then; PgQueuer's "
        "exit time is its own row). *first job started -> done* leaves start-up out; "
        "*spawn -> first job started* is start-up.",
        "- **Drain, 1 worker process**: N jobs enqueued in bulk, one worker process, first "
        f"job started -> last finished; N = {_sizes(cfg, 'n_drain')}. eventjobs runs "
        "`runworker --burst` with its default options (one supervisor and one child per "
        "CPU); Celery one worker with its default concurrency (one child per CPU).",
        "- **Latency**: one idle worker (eventjobs `runworker --queue default`, default "
        f"options), warmed with 3 jobs, idle {cfg['lat_idle']} s, then {cfg['n_lat']} jobs "
        f"one by one, {cfg['lat_gap_ms']:.0f} ms apart (±10%, seeded); each carries "
        "time.time() taken before the enqueue call (its commit included), and the task's "
        "first act appends now - t0 to a file. Nearest-rank p50 / p99. **While another "
        "queue drains**: the same, while `runworker --queue slow` works through a backlog of "
        f"{cfg['n_slow_backlog']:,} jobs on queue `slow` (enqueued with enqueue_many; the "
        "samples start once its first job finished, and the row fails if the backlog ran "
        "out before the last sample).",
        "- **Consume**: one consumer group, one (or two) `consume bench --burst` on a backlog "
        "published before it starts; events/s from the first event handled to the exit of "
        "the last process (start-up left out and shown apart); `eventjobs_status --json` "
        "must then show lag 0. *Fresh*: a brand-new database each pass (a copy of a "
        f"migrated, never-used template), {cfg['n_fresh']:,} keyless events published with "
        "`publish()` in 10 transactions (run from 2 processes at once, only to shorten the "
        "fill), no ANALYZE (autovacuum is off on the event table "
        "of that database so that none can happen; the row fails if the table was analyzed "
        f"anyway). *Keyed, analyzed*: {cfg['n_backlog']:,} events with one of 1,000 keys "
        "(publish_many, 10,000 per call), then ANALYZE. Redis: a new stream, XADD "
        "pipelined, the consumer pipelines XACK of a batch with XREADGROUP COUNT 100 of the "
        "next.",
        "- **Scale column**: the same eventjobs tests in one database preloaded once with "
        f"{cfg['scale_finished']:,} finished jobs (cloned in SQL from one enqueued through "
        f"the public API), {cfg['scale_future']:,} jobs scheduled for tomorrow "
        f"(enqueue_many) and {cfg['scale_events']:,} old events already consumed by the "
        "group (a published batch cloned in SQL, then `consumer_group reset bench "
        "--to-end`), then VACUUM ANALYZE. Each test deletes only the rows it added, then "
        "VACUUMs (events are deleted under the pruner's transaction-local flag).",
        "- **Memory**: pass 1 only; one `runworker --burst` over "
        f"{cfg['n_rss']:,} jobs and one `consume bench --burst` over {cfg['n_rss']:,} "
        "events, RSS of the whole process group sampled every 0.25 s; the sample at 10% "
        "of the work and the last one before the last job finished (or, for the consumer, "
        "before it exited).",
        "- **pgbench ceiling**: `pgbench -n -M prepared` (QUICK: `-t` a fixed count per "
        "client, else `-T` seconds) on bench/pgbench/: single-row INSERT, 1,000-row INSERT, "
        "claim + complete one job, claim + complete 100 (1 and 2 clients), one group "
        "reading 100 events and advancing its offset. Rates are tps × items per script.",
    ]


def peer_notes(cfg: dict) -> list[str]:
    return [
        "- **How each peer is run, and why that is its best for this workload.**",
        f"  - *PgQueuer*: `pgq run` on asyncpg with uvloop (its CLI uses uvloop whenever it is "
        f"installed), `--batch-size {cfg['pgq_batch']}`: its performance guide says to raise the "
        "batch for jobs under a second (its default is 10), and `bench/tools/pgq_batch_sweep.py` "
        "(two drain processes, 10 to 1,000) chose this size: the plateau of its drain rate "
        "here (10 -> 500 about 8×, 1,000 no faster); its "
        "recommended autovacuum settings (`pgq autovac`); `--log-level WARNING`; durable tables "
        "(its default; eventjobs is durable too). Enqueue through SyncQueries + "
        "SyncPsycopgDriver (sync code, as Django code would), bulk through its list enqueue.",
        f"  - *Procrastinate*: `procrastinate worker --concurrency {cfg['procrastinate_concurrency']}`"
        " (its throughput knob; 10 doubled its drain rate against the default 1 in "
        "peers-baseline.md), sync defer(), batch_defer() for bulk.",
        "  - *Celery*: the prefork pool with its default concurrency (one child per CPU) and "
        "default prefetch, no result backend, `-l WARNING`; `--without-mingle --without-gossip` "
        "only shorten its start-up. Its figures include one Redis INCR per task (the only way "
        "to see completion).",
        "  - *django-tasks-db*: `db_worker` with persistent connections (CONN_MAX_AGE=None, "
        "3-4× its drain rate with Django's default 0) and `--no-startup-delay`; its latency is "
        "its poll interval (default 1 s). It has no bulk enqueue.",
        "  - *Redis Streams*: XREADGROUP COUNT 100 with the previous batch's XACK in the same "
        "pipeline, so each batch costs one round trip.",
        "- **Where the harness differs from a user** (and numbers could differ): every system "
        "gets a database of its own, emptied (TRUNCATE) between tests, so tables start small "
        "and their statistics are whatever the last test left (except the fresh-table row and "
        "the scale column); worker output goes to a log file; the enqueuing process is the "
        "harness itself on the same two cores; latency jobs are the only jobs carrying a "
        "payload; the drain figures of the peers stop at their last finished job, eventjobs' "
        "at its processes' exit (stricter for eventjobs); the Celery task does one extra Redis "
        "round trip.",
    ]


def results_md(samples: dict, systems: list, cfg: dict, mode: str, elapsed: float,
               load: list[float], foreign: list[int]) -> tuple[str, list[str], str]:
    table, notes = report.build_table(samples, systems)
    text = [
        f"# eventjobs benchmark ({mode})",
        "",
        "Generated by `make bench` (bench/run.py). Figures from one invocation; compare "
        "columns within this file only (a ±10–50% swing between invocations is normal on a "
        "shared machine).",
        "",
        "## Machine",
        "",
        *report.machine_info(),
        f"- Run took {elapsed:.0f} s; load average at the start of each pass: "
        + ", ".join(f"{x:.2f}" for x in load),
        "- Transactions open in other databases of the server, sampled after each "
        f"system's tests: at most {max(foreign, default=0)}, in {sum(1 for f in foreign if f > 0)}"
        f" of {len(foreign)} samples. Any such transaction holds the server's snapshot xmin, "
        "and so eventjobs' event delivery, back in every database: on a shared server the "
        "consume figures can be too low.",
        "",
        "## Results",
        "",
        table,
        "",
    ]
    if notes:
        text += ["Errors:", ""] + [f"{i + 1}. {n}" for i, n in enumerate(notes)] + [""]
    text += ["## Targets (issue 9)", "", report.build_targets(samples), ""]
    text += ["## Method", "", *method_notes(cfg), *peer_notes(cfg), ""]
    text += ["## Raw samples", "", "```json", json.dumps(samples, indent=1), "```", ""]
    return "\n".join(text), notes, table
