"""eventjobs benchmark: jobs and events against their peers, on local PostgreSQL/Redis.

    python run.py            full run (3 passes, scale tests; < 10 min on 2 cores)
    python run.py --quick    fewer items, no scale tests (< 2 min)
    python run.py --smoke    one tiny pass of eventjobs only (< 60 s), exit 1 on any error

Every system runs in every pass (pass 1: all systems, pass 2: all systems, ...), so
ratios between systems are taken in the same minutes; each cell is the median of
the passes (min-max in parentheses). Each system gets its own fresh database
`bench_<system>`, dropped at the end. Each system's tests run in a subprocess with
a time limit; a failure is recorded as "error: ..." in its cells and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import common  # noqa: E402

# ---------------------------------------------------------------------------
# configuration

FULL = {
    "passes": 3,
    "n_enq": 1000,
    "n_bulk": 20000,
    "n_drain": {"eventjobs": 20000, "pgqueuer": 20000, "celery": 2500,
                "procrastinate": 1000, "django_tasks_db": 1000},
    "n_lat": 200,
    "lat_gap_ms": [5, 15],
    "lat_idle": 0.5,
    "stop_grace": 2.0,
    "n_pub": 1000,
    "n_pubbulk": 100000,
    "n_backlog": 100000,
    "pgbench_T": 2,
    "scale": True,
    "scale_finished": 1_000_000,
    "scale_future": 200_000,
    "n_drain_scale": 20000,
    "scale_events": 1_000_000,
    "scale_window": 2.0,
    "n_rss": 100_000,
    "timeout": 120,
    "timeout_rss": 300,
    "system_timeout": 300,
}
QUICK = {
    **FULL,
    "n_enq": 300,
    "n_bulk": 5000,
    "n_drain": {"eventjobs": 3000, "pgqueuer": 3000, "celery": 600,
                "procrastinate": 300, "django_tasks_db": 300},
    "n_lat": 50,
    "lat_gap_ms": [2, 6],
    "lat_idle": 0.3,
    "stop_grace": 0.3,
    "n_pub": 500,
    "n_pubbulk": 10000,
    "n_backlog": 10000,
    "pgbench_T": 1,
    "pgbench_t": {"enqueue.sql": 1500, "enqueue_batch100.sql": 400,
                  "claim_complete_batch100.sql": 300, "event_consume_batch100.sql": 800},
    "pgbench_single": False,
    "pgbench_events": 300_000,
    "pgbench_claim_prefill": 80_000,
    "pgbench_checkpoint": False,
    "scale": False,
    "timeout": 60,
    "system_timeout": 120,
}
SMOKE = {
    **QUICK,
    "passes": 1,
    "n_enq": 100,
    "n_bulk": 1000,
    "n_drain": {"eventjobs": 200},
    "n_lat": 20,
    "n_pub": 100,
    "n_pubbulk": 1000,
    "n_backlog": 5000,
    "timeout": 30,
    "system_timeout": 50,
}

# (name, label, module, database, tests, optional_peer)
SYSTEMS = [
    ("eventjobs", "**eventjobs**", "eventjobs_jobs", "bench_eventjobs",
     ["enqueue", "drain1", "drain2"], False),
    ("django_tasks_db", "django-tasks-db", "django_tasks_db", "bench_django_tasks_db",
     ["enqueue", "drain1", "drain2"], True),
    ("procrastinate", "Procrastinate", "procrastinate_sys", "bench_procrastinate",
     ["enqueue", "drain1", "drain2"], True),
    ("pgqueuer", "PgQueuer", "pgqueuer_sys", "bench_pgqueuer",
     ["enqueue", "drain1", "drain2"], True),
    ("celery", "Celery+Redis", "celery_sys", None,
     ["enqueue", "drain1", "drain2"], True),
    ("eventjobs_events", "**eventjobs**", "eventjobs_events", "bench_eventjobs_events",
     ["publish", "consume1", "consume2"], False),
    ("redis_streams", "Redis Streams", "redis_streams", None,
     ["publish", "consume1", "consume2"], True),
    ("pgbench", "pgbench ceiling", "pgbench_ceiling", "bench_pgbench",
     ["enqueue", "claim", "events"], True),
]
# Scale tests (eventjobs only), run in every pass except RSS (pass 1 only).
SCALE = [
    ("eventjobs_scale_fin", "eventjobs_jobs", "bench_eventjobs_fin", "setup_scale_fin",
     ["scale_fin"]),
    ("eventjobs_scale_fut", "eventjobs_jobs", "bench_eventjobs_fut", "setup_scale_fut",
     ["scale_fut"]),
    ("eventjobs_scale_ev", "eventjobs_events", "bench_eventjobs_ev1m", "setup_scale",
     ["scale_consume"]),
]
RSS = [
    ("eventjobs_rss", "eventjobs_jobs", "bench_eventjobs", ["rss"]),
    ("eventjobs_rss_ev", "eventjobs_events", "bench_eventjobs_events", ["rss"]),
]

# Table columns: (label, system names whose metrics fill it)
COLUMNS = [
    ("**eventjobs**", ["eventjobs", "eventjobs_events", "eventjobs_scale_fin",
                       "eventjobs_scale_fut", "eventjobs_scale_ev", "eventjobs_rss",
                       "eventjobs_rss_ev"]),
    ("django-tasks-db", ["django_tasks_db"]),
    ("Procrastinate", ["procrastinate"]),
    ("PgQueuer", ["pgqueuer"]),
    ("Celery+Redis", ["celery"]),
    ("Redis Streams", ["redis_streams"]),
    ("pgbench ceiling", ["pgbench"]),
]

# (metric key, row label, kind) -- kind: rate, ms, s, mb
ROWS = [
    ("section", "Jobs (no-op task)", None),
    ("enq1", "enqueue 1-by-1, own transaction each (jobs/s)", "rate"),
    ("enqbulk", "enqueue bulk, 1,000 per call (jobs/s)", "rate"),
    ("drain1", "drain, 1 worker process (jobs/s)", "rate"),
    ("drain2", "drain, 2 worker processes (jobs/s)", "rate"),
    ("drain1_single", "claim+complete one job at a time, 1 client (jobs/s)", "rate"),
    ("lat_p50", "enqueue -> start latency p50 (ms)", "ms"),
    ("lat_p99", "enqueue -> start latency p99 (ms)", "ms"),
    ("startup", "worker start-up to first finished job (s, excluded above)", "s"),
    ("section", "Events (no-op handler)", None),
    ("pub1", "publish 1-by-1 (events/s)", "rate"),
    ("pubbulk", "publish bulk (events/s)", "rate"),
    ("cons1", "consume backlog, 1 group, 1 process (events/s)", "rate"),
    ("cons2", "consume backlog, 1 group, 2 processes (events/s)", "rate"),
    ("elat_p50", "publish -> handler latency p50 (ms)", "ms"),
    ("elat_p99", "publish -> handler latency p99 (ms)", "ms"),
    ("section", "Scale (eventjobs)", None),
    ("s_fin_drain", "drain, 1 worker, with 1M finished jobs in the table (jobs/s)", "rate"),
    ("s_fin_p50", "claim latency p50 with 1M finished jobs (ms)", "ms"),
    ("s_fin_p99", "claim latency p99 with 1M finished jobs (ms)", "ms"),
    ("s_fut_drain", "drain, 1 worker, with 200k future-dated jobs (jobs/s)", "rate"),
    ("s_fut_p50", "claim latency p50 with 200k future-dated jobs (ms)", "ms"),
    ("s_fut_p99", "claim latency p99 with 200k future-dated jobs (ms)", "ms"),
    ("s_ev_cons", "consume rate with a 1M-event backlog (events/s)", "rate"),
    ("rss_w_early", "worker RSS after 10% of the RSS run's jobs (MB)", "mb"),
    ("rss_w_end", "worker RSS after all of the RSS run's jobs (MB)", "mb"),
    ("rss_w_rate", "drain rate over the RSS run's jobs (jobs/s)", "rate"),
    ("rss_c_early", "consumer RSS after 10% of the RSS run's events (MB)", "mb"),
    ("rss_c_end", "consumer RSS after all of the RSS run's events (MB)", "mb"),
    ("rss_c_rate", "consume rate over the RSS run's events (events/s)", "rate"),
]

# ---------------------------------------------------------------------------
# running


class Runner:
    def __init__(self, cfg: dict, verbose: bool = True):
        self.cfg = cfg
        self.samples: dict[str, dict[str, list]] = {}
        self.failed_setup: dict[str, str] = {}
        self.verbose = verbose
        self.log = []

    def say(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        self.log.append(line)
        if self.verbose:
            print(line, flush=True)

    def call(self, system: str, module: str, what: str, db: str | None,
             timeout: float) -> dict:
        cfg = dict(self.cfg)
        cfg["db"] = db
        cfg["system"] = system
        cmd = [sys.executable, str(BENCH_DIR / "sysrun.py"), module, what, json.dumps(cfg)]
        errlog = common.log_path(f"sysrun-{system}")  # TMP_DIR set in main()
        env = {**os.environ, "PYTHONPATH": str(BENCH_DIR)}
        with open(errlog, "ab") as err:
            err.write(f"\n=== {time.ctime()} {module} {what}\n".encode())
            err.flush()
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=BENCH_DIR,
                                 env=env, start_new_session=True)
            try:
                out, _ = p.communicate(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(p)
                out, _ = p.communicate()
        results: dict = {}
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("RESULT "):
                try:
                    results.update(json.loads(line[7:]))
                except json.JSONDecodeError:
                    pass
        if timed_out:
            results["_timeout"] = f"error: timed out after {timeout:.0f}s"
        elif p.returncode not in (0, 1) and not results:
            tail = errlog.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            results["_crash"] = f"error: exit {p.returncode}: {tail[0][:200]}"
        return results

    def record(self, system: str, keys_by_test: dict, results: dict) -> None:
        store = self.samples.setdefault(system, {})
        fatal = results.get("_timeout") or results.get("_crash")
        for keys in keys_by_test.values():
            for k in keys:
                if k in results:
                    store.setdefault(k, []).append(results[k])
                elif fatal:
                    store.setdefault(k, []).append(fatal)

    def setup(self, system: str, module: str, db: str | None, fn: str = "setup") -> bool:
        t0 = time.time()
        try:
            if db:
                common.create_db(db)
        except Exception as exc:
            self.failed_setup[system] = f"error: create {db}: {exc}"
            return False
        res = self.call(system, module, fn, db, self.cfg["system_timeout"])
        if res.get("_ok") != fn:
            msg = res.get("_timeout") or res.get("_crash") or "error: setup failed"
            tail = common.log_path(f"sysrun-{system}").read_text(errors="replace")
            last = [ln for ln in tail.strip().splitlines() if ln.strip()][-1:] or [""]
            self.failed_setup[system] = f"{msg}: {last[0][:200]}"
            self.say(f"{system}: setup FAILED: {self.failed_setup[system]}")
            return False
        self.say(f"{system}: setup {fn} ok in {time.time() - t0:.1f}s")
        return True

    def run_tests(self, system: str, module: str, db: str | None, tests: list[str]) -> None:
        keys = test_keys(module, tests)
        if system in self.failed_setup:
            self.record(system, keys, {k: self.failed_setup[system]
                                       for ks in keys.values() for k in ks})
            return
        t0 = time.time()
        res = self.call(system, module, ",".join(tests), db, self.cfg["system_timeout"])
        self.record(system, keys, res)
        errs = [k for k, v in res.items() if isinstance(v, str) and v.startswith("error")]
        short = ", ".join(f"{k}={fmt_value(v, kind_of(k))}" for k, v in res.items()
                          if not (isinstance(v, str)) and not k.startswith("_"))
        times = " ".join(f"{k[3:]}={v}" for k, v in res.items() if k.startswith("_t_"))
        self.say(f"{system}: {time.time() - t0:.1f}s ({times})  {short}"
                 + (f"  ERRORS in {errs}" if errs else ""))


def test_keys(module: str, tests: list[str]) -> dict:
    import importlib

    try:
        mod = importlib.import_module(f"systems.{module}")
        return {t: mod.TESTS[t][1] for t in tests}
    except Exception:
        return {t: [] for t in tests}


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------
# formatting


def kind_of(key: str) -> str:
    for k, _, kind in ROWS:
        if k == key:
            return kind
    return "rate"


def fmt_value(v, kind: str) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return "–"
    if kind == "rate":
        return f"{v:,.0f}"
    if kind == "ms":
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    if kind == "s":
        return f"{v:.2f}"
    if kind == "mb":
        return f"{v:.1f}"
    return str(v)


def cell(samples: list, kind: str, notes: list) -> str:
    if not samples:
        return "–"
    nums = [s for s in samples if isinstance(s, int | float)]
    errs = [s for s in samples if isinstance(s, str)]
    if not nums:
        return f"error [{_note(notes, errs[0])}]"
    med = statistics.median(nums)
    text = fmt_value(med, kind)
    if len(nums) > 1:
        text += f" ({fmt_value(min(nums), kind)}–{fmt_value(max(nums), kind)})"
    if errs:
        text += f" [{_note(notes, errs[0])}: {len(errs)} failed]"
    return text


def _note(notes: list, msg: str) -> int:
    if msg not in notes:
        notes.append(msg)
    return notes.index(msg) + 1


def build_table(runner: Runner) -> tuple[str, list[str]]:
    notes: list[str] = []
    header = "| metric | " + " | ".join(c for c, _ in COLUMNS) + " |"
    lines = [header, "|---" * (len(COLUMNS) + 1) + "|"]
    section = None
    for key, label, kind in ROWS:
        if key == "section":
            section = f"| *{label}* |" + " |" * len(COLUMNS)
            continue
        cells = []
        any_value = False
        for _, systems in COLUMNS:
            samples = []
            for s in systems:
                samples += runner.samples.get(s, {}).get(key, [])
            if samples:
                any_value = True
            cells.append(cell(samples, kind, notes))
        if any_value:
            if section:
                lines.append(section)
                section = None
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines), notes


def machine_info(cfg: dict) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        with common.pg_connect("postgres") as c:
            pg = common.scalar(c, "SHOW server_version")
            pg_conf = ", ".join(
                f"{n} {common.scalar(c, f'SHOW {n}')}"
                for n in ("shared_buffers", "synchronous_commit", "max_connections"))
    except Exception as exc:
        pg, pg_conf = f"unreachable ({exc})", ""
    try:
        import redis

        rv = redis.Redis.from_url(f"{common.REDIS_URL_BASE}/0").info("server")["redis_version"]
    except Exception as exc:
        rv = f"unreachable ({type(exc).__name__})"
    pkgs = []
    for name in ("eventjobs", "Django", "psycopg", "django-tasks-db", "procrastinate", "pgqueuer",
                 "asyncpg", "celery", "kombu", "redis", "hiredis"):
        try:
            pkgs.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pkgs.append(f"{name} (not installed)")
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR,
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        rev = ""
    return [
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}"
        + (f", eventjobs commit {rev}" if rev else ""),
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem}; {platform.platform()}",
        f"- PostgreSQL {pg} on 127.0.0.1 ({pg_conf})",
        f"- Redis {rv} on 127.0.0.1",
        f"- Python {platform.python_version()}; {', '.join(pkgs)}",
    ]


def method_notes(cfg: dict) -> list[str]:
    nd = cfg["n_drain"]
    lines = [
        f"- Passes: {cfg['passes']}; each cell is the median over passes, (min–max) when more "
        "than one. Systems alternate within each pass (pass 1: all systems, pass 2: all "
        "systems, ...), with the order rotated between passes.",
        f"- Enqueue/publish 1-by-1: {cfg['n_enq']:,} jobs / {cfg['n_pub']:,} events, each call "
        "its own transaction or round trip, timed in-process after 20 warm-up calls. Bulk: "
        "the system's own bulk API, 1,000 per call (Redis: pipelines of 500); no cell where "
        "the system has no bulk API.",
        "- Drain: N ready jobs queued first, then workers start; the remaining count is polled "
        "every 25 ms and the rate runs from the first observed progress to the empty queue "
        "(worker start-up excluded, shown separately). N = "
        + ", ".join(f"{k} {v:,}" for k, v in nd.items()) + ".",
        "- eventjobs \"2 workers\" is `runworker --concurrency 2` (2 child processes); Celery "
        "is one worker with `--concurrency 2` (prefork); the other peers run 2 worker "
        "processes. Celery counts completions with one Redis INCR per task.",
        "- Latency: the worker (or consumer) of the 1-worker drain, once that drain is over "
        "and the finished rows are deleted: warmed with 3 jobs, left idle for "
        f"{cfg['lat_idle']} s, then {cfg['n_lat']} items go out one by one with a seeded "
        f"random gap of {cfg['lat_gap_ms'][0]}–{cfg['lat_gap_ms'][1]} ms; each carries "
        "time.time() taken before the enqueue call (its commit included), and the task's "
        "or handler's first act appends now - t0 to a file. Nearest-rank p50/p99.",
        f"- Events: consume a backlog of {cfg['n_backlog']:,} events by one consumer group "
        "(eventjobs: `consume bench`; Redis: XREADGROUP COUNT 100 + XACK); progress is the "
        "group's progress (eventjobs: its cursor rows, bisected over the backlog's ids per "
        "partition, because `eventjobs_status` caps lag at 10,000; Redis: XINFO GROUPS lag + "
        "pending). eventjobs events carry one of 1,000 keys so 2 processes can share the "
        "group's 8 partitions.",
        "- After each fill the harness runs ANALYZE on the system's queue/event table (as "
        "autovacuum soon would): a table just truncated and refilled otherwise runs on "
        "empty-table plans (seen: eventjobs consume 3.5k/s instead of ~190k/s on a fresh "
        "200k backlog).",
        "- django-tasks-db runs with CONN_MAX_AGE=None (persistent connections) and "
        "`db_worker` defaults otherwise (`--interval 1`, so its latency is the poll interval; "
        "`--no-startup-delay` only shortens start-up). Celery runs with `--without-mingle "
        "--without-gossip` (start-up only). "
        "PgQueuer enqueues through SyncQueries + SyncPsycopgDriver (sync code, as in Django); "
        "its `pgq run` goes through peers/pgq_cli.py (typer workaround).",
        "- pgbench ceiling: `pgbench -n -M prepared "
        + ("-t N` (a fixed count per client, QUICK)" if cfg.get("pgbench_t")
           else f"-T {cfg['pgbench_T']}`") + " on the scripts in "
        "bench/pgbench/ (enqueue, enqueue_batch100, claim_complete, claim_complete_batch100 "
        "with 1 and 2 clients in the drain rows, event_consume_batch100). Rates are tps × items "
        "per script run.",
    ]
    if cfg.get("scale"):
        lines.append(
            f"- Scale: own databases with {cfg['scale_finished']:,} finished jobs / "
            f"{cfg['scale_future']:,} future-dated jobs (filled once, before pass 1); drain of "
            f"{cfg['n_drain_scale']:,} jobs with 1 worker and the latency test in each pass. "
            f"Event backlog of {cfg['scale_events']:,} (group reset to the beginning after each "
            f"pass); the consume rate is measured over a {cfg['scale_window']:.0f} s window "
            "after the first progress. RSS: one run in pass "
            f"1 over {cfg['n_rss']:,} jobs and {cfg['n_rss']:,} events (supervisor + children "
            "for the worker), sampled after 10% and at the end; flat means no leak.")
    else:
        lines.append("- Scale tests skipped in this mode (QUICK/smoke).")
    return lines


# ---------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--passes", type=int)
    ap.add_argument("--only", help="comma-separated system names (see SYSTEMS in run.py)")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--keep-dbs", action="store_true", help="do not drop bench_* databases")
    ap.add_argument("--out", help="results file (default bench/results.md; smoke: .tmp/)")
    args = ap.parse_args()

    cfg = dict(SMOKE if args.smoke else QUICK if args.quick else FULL)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.passes:
        cfg["passes"] = args.passes
    if args.no_scale:
        cfg["scale"] = False
    systems = list(SYSTEMS)
    if args.smoke:
        systems = [s for s in systems if not s[5]]  # eventjobs only, peers skipped
        cfg["scale"] = False
    if args.only:
        wanted = set(args.only.split(","))
        systems = [s for s in systems if s[0] in wanted]
    # results.md holds complete runs only; smoke and --only runs go to .tmp/.
    out = Path(args.out) if args.out else (
        BENCH_DIR / ".tmp" / "smoke-results.md" if args.smoke
        else BENCH_DIR / ".tmp" / "partial-results.md" if args.only
        else BENCH_DIR / "results.md")

    # A smoke run (the test-suite's) must not disturb a real run going on: own databases
    # (bench_smoke_*) and its own log directory.
    prefix = "bench_smoke_" if args.smoke else "bench_"
    tmp = BENCH_DIR / ".tmp" / ("smoke" if args.smoke else "run")
    cfg["tmp_dir"] = str(tmp)
    common.TMP_DIR = tmp
    tmp.mkdir(parents=True, exist_ok=True)
    for old in tmp.glob("*.log"):
        old.unlink()

    def dbname(db):
        return db.replace("bench_", prefix, 1) if db else db

    systems = [(n, lab, mod, dbname(db), t, o) for n, lab, mod, db, t, o in systems]
    scale = [(n, mod, dbname(db), fn, t) for n, mod, db, fn, t in SCALE]
    rss = [(n, mod, dbname(db), t) for n, mod, db, t in RSS]
    cfg["db_fin"] = dbname("bench_eventjobs_fin")
    cfg["db_fut"] = dbname("bench_eventjobs_fut")
    runner = Runner(cfg)
    t_start = time.time()
    runner.say(f"mode {mode}: {cfg['passes']} pass(es), systems "
               f"{', '.join(s[0] for s in systems)}" + (", scale tests" if cfg["scale"] else ""))
    try:
        with common.pg_connect("postgres") as c:
            c.execute("SELECT 1")
    except Exception as exc:
        print(f"PostgreSQL at {common.PG_HOST}:{common.PG_PORT} unreachable: {exc}")
        return 2

    dbs = []
    for name, _label, module, db, _tests, _opt in systems:
        if db:
            dbs.append(db)
        runner.setup(name, module, db)
    if cfg["scale"]:
        for name, module, db, fn, _tests in scale:
            dbs.append(db)
            runner.setup(name, module, db, fn)

    load = []
    try:
        for i in range(cfg["passes"]):
            rot = i % len(systems)
            order = systems[rot:] + systems[:rot]
            runner.say(f"--- pass {i + 1}/{cfg['passes']} (load avg {os.getloadavg()[0]:.2f})")
            load.append(os.getloadavg()[0])
            for name, _label, module, db, tests, _opt in order:
                runner.run_tests(name, module, db, tests)
            if cfg["scale"]:
                for name, module, db, _fn, tests in scale:
                    runner.run_tests(name, module, db, tests)
                if i == 0:
                    for name, module, db, tests in rss:
                        runner.run_tests(name, module, db, tests)
    finally:
        if not args.keep_dbs:
            for db in dict.fromkeys(dbs):
                try:
                    common.drop_db(db)
                except Exception as exc:
                    runner.say(f"could not drop {db}: {exc}")

    table, notes = build_table(runner)
    elapsed = time.time() - t_start
    text = [
        f"# eventjobs benchmark ({mode})",
        "",
        "Generated by `make bench` (bench/run.py). Figures from one invocation; compare "
        "columns within this file only (see shared notes on noise: a ±10–50% swing between "
        "invocations is normal on this shared machine).",
        "",
        "## Machine",
        "",
        *machine_info(cfg),
        f"- Run took {elapsed:.0f} s; load average at the start of each pass: "
        + ", ".join(f"{x:.2f}" for x in load),
        "",
        "## Results",
        "",
        table,
        "",
    ]
    if notes:
        text += ["Errors:", ""] + [f"{i + 1}. {n}" for i, n in enumerate(notes)] + [""]
    text += ["## Method", "", *method_notes(cfg), ""]
    text += ["## Raw samples", "", "```json", json.dumps(runner.samples, indent=1), "```", ""]
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(text))
    print()
    print(table)
    if notes:
        print("\nErrors:")
        for i, n in enumerate(notes):
            print(f"{i + 1}. {n}")
    print(f"\nwritten to {out} ({elapsed:.0f} s)")
    if args.smoke and notes:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
