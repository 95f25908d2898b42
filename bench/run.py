"""eventjobs benchmark: jobs and events beside their peers, on the PostgreSQL server
DATABASE_URL names and the local Redis.

    python run.py            full run (3 passes, scale column; about 15 min on 2 cores)
    python run.py --quick    one pass, small sizes, every row (about 3 min)
    python run.py --smoke    one tiny pass of eventjobs only (< 60 s), exit 1 on any error

Every system runs in every pass (pass 1: all systems, pass 2: all systems, ...), so
ratios between systems are taken in the same minutes; each cell is the median of the
passes (min-max in parentheses), each target the median of per-pass ratios. Each system
has its own database `bench_<system>`, dropped at the end. Each system's tests run in a
subprocess with a time limit; a failure is recorded as "error: ..." in its cells and the
run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import common  # noqa: E402
import method  # noqa: E402
import plan  # noqa: E402
import report  # noqa: E402
from plan import System  # noqa: E402


class Runner:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.samples: dict[str, dict[str, list]] = {}
        self.failed_setup: dict[str, str] = {}
        self.foreign: list[int] = []  # open transactions of others, after each system's tests

    def say(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def call(self, s: System, what: str, timeout: float) -> dict:
        cfg = {**self.cfg, "db": s.db, "system": s.name}
        cmd = [sys.executable, str(BENCH_DIR / "sysrun.py"), s.module, what, json.dumps(cfg)]
        errlog = common.log_path(f"sysrun-{s.name}")
        env = {**os.environ, "PYTHONPATH": str(BENCH_DIR)}
        with open(errlog, "ab") as err:
            err.write(f"\n=== {time.ctime()} {s.module} {what}\n".encode())
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

    def record(self, name: str, keys: list[str], results: dict) -> None:
        """One entry per key per pass (None when a test gave none), so that entry i of
        every key is pass i and per-pass ratios pair up."""
        store = self.samples.setdefault(name, {})
        fatal = results.get("_timeout") or results.get("_crash")
        for k in keys:
            store.setdefault(k, []).append(results.get(k, fatal))

    def setup(self, s: System, created: set[str]) -> None:
        """Create s.db (a copy of s.template, migrated here on first use), then run the
        module's setup on it; a fresh system's db is created before each pass instead."""
        t0 = time.time()
        # (database, created as a copy of, function to run on it)
        steps: list[tuple[str, str | None, str | None]] = []
        if s.template and s.template not in created:
            steps.append((s.template, None, "setup"))
        if s.db and not s.fresh:
            steps.append((s.db, s.template, s.setup))
        for db, template, fn in steps:
            if db not in created:
                try:
                    common.create_db(db, template=template)
                except Exception as exc:
                    self.failed_setup[s.name] = f"error: create {db}: {exc}"
                    return
                created.add(db)
            if fn and not self._setup_call(s, db, fn):
                return
        self.say(f"{s.name}: set up in {time.time() - t0:.1f}s")

    def _setup_call(self, s: System, db: str, fn: str) -> bool:
        res = self.call(System(s.name, s.column, s.module, db, s.tests), fn,
                        self.cfg["system_timeout"])
        if res.get("_ok") == fn:
            return True
        msg = res.get("_timeout") or res.get("_crash") or "error: setup failed"
        tail = common.log_path(f"sysrun-{s.name}").read_text(errors="replace")
        last = [ln for ln in tail.strip().splitlines() if ln.strip()][-1:] or [""]
        self.failed_setup[s.name] = f"{msg}: {last[0][:200]}"
        self.say(f"{s.name}: {fn} FAILED: {self.failed_setup[s.name]}")
        return False

    def run_tests(self, s: System) -> None:
        keys = test_keys(s.module, s.tests)
        if s.name in self.failed_setup:
            self.record(s.name, keys, {k: self.failed_setup[s.name] for k in keys})
            return
        if s.fresh:  # a brand-new database, copied from the never-used template
            common.create_db(s.db, template=s.template)
        t0 = time.time()
        res = self.call(s, ",".join(s.tests), self.cfg["system_timeout"])
        self.record(s.name, keys, res)
        errs = [k for k, v in res.items() if isinstance(v, str) and v.startswith("error")]
        short = ", ".join(f"{k}={report.fmt_value(v, report.kind_of(k))}" for k, v in res.items()
                          if not isinstance(v, str) and not k.startswith("_"))
        times = " ".join(f"{k[3:]}={v}" for k, v in res.items() if k.startswith("_t_"))
        self.say(f"{s.name}: {time.time() - t0:.1f}s ({times})  {short}"
                 + (f"  ERRORS in {errs}" if errs else ""))
        self.foreign.append(foreign_transactions())


def foreign_transactions() -> int:
    """Transactions open in databases not the bench's: they hold the server's snapshot
    xmin back, and with it eventjobs' event delivery (and vacuum) in every database."""
    try:
        with common.pg_connect("postgres") as c:
            return int(common.scalar(
                c, "SELECT count(*) FROM pg_stat_activity WHERE datname NOT LIKE 'bench%%' "
                   "AND pid <> pg_backend_pid() AND (backend_xid IS NOT NULL OR "
                   "backend_xmin IS NOT NULL)"))
    except Exception:
        return -1


def test_keys(module: str, tests: list[str]) -> list[str]:
    import importlib

    try:
        mod = importlib.import_module(f"systems.{module}")
        return [k for t in tests for k in mod.TESTS[t][1]]
    except Exception:
        return []


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


def _args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1",
                    help="one pass, small sizes, every row (also QUICK=1)")
    ap.add_argument("--smoke", action="store_true",
                    help="one tiny eventjobs-only pass; exit 1 if any cell is an error")
    ap.add_argument("--passes", type=int, help="number of passes (default 3; quick 1)")
    ap.add_argument("--only", help="comma-separated system names (see SYSTEMS in plan.py)")
    ap.add_argument("--no-scale", action="store_true", help="skip the scale column")
    ap.add_argument("--keep-dbs", action="store_true", help="do not drop the bench_* databases")
    ap.add_argument("--out", help="results file (default bench/results.md for a full run; "
                                  "quick, smoke and --only runs: bench/.tmp/)")
    return ap.parse_args()


def _plan(args) -> tuple[dict, str, list[System], list[System]]:
    cfg = dict(plan.SMOKE if args.smoke else plan.QUICK if args.quick else plan.FULL)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.passes:
        cfg["passes"] = args.passes
    if args.no_scale:
        cfg["scale"] = False
    systems = list(plan.SYSTEMS) + (list(plan.SCALE) if cfg["scale"] else [])
    if args.smoke:
        systems = [s for s in systems if not s.peer]
    if args.only:
        wanted = set(args.only.split(","))
        systems = [s for s in systems if s.name in wanted]
    # A smoke run (the test-suite's) must disturb neither a real run nor another smoke run
    # on the same server (parallel test runs): databases named after this process.
    prefix = f"bench_smoke{os.getpid()}_" if args.smoke else "bench_"

    def rename(db):
        return db.replace("bench_", prefix, 1) if db else db

    systems = [System(s.name, s.column, s.module, rename(s.db), s.tests, s.peer, s.setup,
                      rename(s.template), s.fresh) for s in systems]
    rss = [System(s.name, s.column, s.module, rename(s.db), s.tests, s.peer, setup=None)
           for s in plan.RSS if not args.smoke and any(x.db == rename(s.db) for x in systems)]
    return cfg, mode, systems, rss


def main() -> int:
    args = _args()
    cfg, mode, systems, rss = _plan(args)
    # results.md holds full runs only; the others go to .tmp/.
    out = Path(args.out) if args.out else (
        BENCH_DIR / ".tmp" / f"{mode}-results.md" if mode != "full"
        else BENCH_DIR / ".tmp" / "partial-results.md" if args.only
        else BENCH_DIR / "results.md")
    tmp = BENCH_DIR / ".tmp" / ("smoke" if args.smoke else "run")
    cfg["tmp_dir"] = str(tmp)
    common.TMP_DIR = tmp
    tmp.mkdir(parents=True, exist_ok=True)
    for old in [*tmp.glob("*.log"), *tmp.glob("*.txt")]:
        old.unlink()

    runner = Runner(cfg)
    t_start = time.time()
    runner.say(f"mode {mode}: {cfg['passes']} pass(es) on PostgreSQL at {common.SERVER.where}; "
               f"systems {', '.join(s.name for s in systems)}")
    try:
        with common.pg_connect("postgres") as c:
            c.execute("SELECT 1")
    except Exception as exc:
        print(f"PostgreSQL at {common.SERVER.where} (DATABASE_URL) unreachable: {exc}")
        return 2

    created: set[str] = set()
    for s in systems:
        runner.setup(s, created)
    load = []
    try:
        for i in range(cfg["passes"]):
            rot = i % len(systems)
            order = systems[rot:] + systems[:rot]
            load.append(os.getloadavg()[0])
            runner.say(f"--- pass {i + 1}/{cfg['passes']} (load avg {load[-1]:.2f})")
            for s in order:
                runner.run_tests(s)
            if i == 0:
                for s in rss:
                    runner.run_tests(s)
    finally:
        if not args.keep_dbs:
            dbs = {s.db for s in systems if s.db} | {s.template for s in systems if s.template}
            for db in sorted(dbs):
                try:
                    common.drop_db(db)
                except Exception as exc:
                    runner.say(f"could not drop {db}: {exc}")

    text, notes, table = method.results_md(runner.samples, systems + rss, cfg, mode,
                                           time.time() - t_start, load, runner.foreign)
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print()
    print(table)
    for i, n in enumerate(notes):
        print(f"{i + 1}. {n}")
    print(f"\nwritten to {out} ({time.time() - t_start:.0f} s)")
    return 1 if args.smoke and notes else 0


if __name__ == "__main__":
    sys.exit(main())
