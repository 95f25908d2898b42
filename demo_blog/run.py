"""`make demo`: the eventjobs demo blog in one command (run as `python -m demo_blog.run`).

1. Finds PostgreSQL at DATABASE_URL; where none answers, starts a private cluster from
   the installed server binaries in .demo/postgres (stopped again on exit).
2. Creates the database when missing, migrates, seeds authors and posts, and creates the
   demo admin login (admin / admin). A second run reuses all of it.
3. Runs `runserver`, `runworker` and `consume` as one process tree and prints the URLs;
   Ctrl+C stops them all.

Environment: DATABASE_URL, DEMO_PORT (8000), DEMO_PG_PORT (54329), DEMO_PG_DIR
(.demo/postgres), DEMO_PG_BIN (where to look for initdb: /usr/lib/postgresql/*/bin).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from demo_blog.launch.cluster import INSTALL_HINT, ClusterError, PrivateCluster, find_binaries
from demo_blog.launch.database import Target, answers, ensure_database
from demo_blog.launch.tree import Child, ProcessTree

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/eventjobs_demo"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", 8000)),
                        help="Port of the web server on 127.0.0.1 (default: DEMO_PORT or 8000).")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="runworker child processes (default: 1, to stay light).")
    parser.add_argument("--prepare-only", action="store_true",
                        help="Find or start PostgreSQL, create, migrate and seed the "
                             "database, then stop (no servers).")
    return parser.parse_args(argv)


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def find_postgres(target: Target) -> tuple[Target, PrivateCluster | None]:
    """The target itself when it answers; else a private cluster's (started here)."""
    if answers(target):
        return target, None
    binaries = find_binaries(os.environ.get("DEMO_PG_BIN", "/usr/lib/postgresql/*/bin"))
    if binaries is None:
        raise ClusterError(f"no PostgreSQL answers at {target.server} and no PostgreSQL "
                           f"server is installed to start one: {INSTALL_HINT}")
    port = int(os.environ.get("DEMO_PG_PORT", 54329))
    directory = Path(os.environ.get("DEMO_PG_DIR", ROOT / ".demo" / "postgres"))
    cluster = PrivateCluster(directory, port, binaries)
    say(f"no PostgreSQL answers at {target.server}; starting a private one")
    say(cluster.start())
    return target.on_port(port), cluster


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"demo: `manage.py {' '.join(args)}` failed (exit {done.returncode})")


def prepare(target: Target, env: dict[str, str]) -> None:
    if ensure_database(target):
        say(f"created database {target.name}")
    else:
        say(f"reusing database {target.name}")
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "seed_demo")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_web(port: int, tree: ProcessTree, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not tree.stop_requested.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def banner(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return "\n".join([
        "",
        "  The eventjobs demo blog is running:",
        f"    blog          {base}/   (log in as alice / demo-password)",
        f"    search        {base}/search/?q=postgresql",
        f"    how it works  {base}/how-it-works/",
        f"    activity      {base}/activity/",
        f"    admin         {base}/admin/   (admin / admin)",
        "",
        "  Replay the activity feed from the beginning of the log, in another terminal:",
        "    .venv/bin/python manage.py consumer_group reset activity --to-beginning",
        "  then watch /activity/ rebuild. Ctrl+C stops everything.",
        "",
    ]) + "\n"


def serve(port: int, concurrency: int, env: dict[str, str]) -> int:
    manage_py = [sys.executable, str(ROOT / "manage.py")]
    tree = ProcessTree([
        Child("web", [*manage_py, "runserver", f"127.0.0.1:{port}", "--noreload"]),
        Child("worker", [*manage_py, "runworker", "--concurrency", str(concurrency)]),
        Child("consume", [*manage_py, "consume"]),
    ], env=env, cwd=str(ROOT))
    tree.install_signals()
    tree.start()
    try:
        if wait_for_web(port, tree):
            tree.write(banner(port))
        elif not tree.stop_requested.is_set():
            say(f"the web server does not answer on port {port} yet; see its output above")
        died = tree.wait()
        if died is not None:
            say(f"{died.name} exited with code {died.popen.returncode}; stopping the demo")
            return 1
        return 0
    finally:
        tree.stop()
        say("stopped the web server, the worker and the consumers")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM before the servers run: clean up like Ctrl+C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        target = Target.from_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    except ValueError as exc:
        say(str(exc))
        return 2
    if not args.prepare_only and not port_is_free(args.port):
        say(f"port {args.port} on 127.0.0.1 is in use; stop what uses it or set DEMO_PORT")
        return 1
    try:
        target, cluster = find_postgres(target)
    except ClusterError as exc:
        say(str(exc))
        return 1
    env = {**os.environ, "DATABASE_URL": target.url, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "demo_blog.settings")
    try:
        prepare(target, env)
        if args.prepare_only:
            return 0
        return serve(args.port, args.concurrency, env)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        if cluster is not None:
            cluster.stop()
            say("stopped the private PostgreSQL")


if __name__ == "__main__":
    sys.exit(main())
