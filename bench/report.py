"""results.md: the table, the targets, the machine and the method."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path

import common
import plan

BENCH_DIR = Path(__file__).resolve().parent


def kind_of(key: str) -> str:
    for k, _, kind in plan.ROWS:
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
    if kind == "x":
        return f"{v:.2f}×"
    if kind == "%":
        return f"{v * 100:.0f}%"
    return str(v)


def _note(notes: list, msg: str) -> int:
    if msg not in notes:
        notes.append(msg)
    return notes.index(msg) + 1


def cell(samples: list, kind: str, notes: list) -> str:
    nums = [s for s in samples if isinstance(s, int | float)]
    errs = [s for s in samples if isinstance(s, str)]
    if not nums and not errs:
        return "–"
    if not nums:
        return f"error [{_note(notes, errs[0])}]"
    text = fmt_value(statistics.median(nums), kind)
    if len(nums) > 1:
        text += f" ({fmt_value(min(nums), kind)}–{fmt_value(max(nums), kind)})"
    if errs:
        text += f" [{_note(notes, errs[0])}: {len(errs)} failed]"
    return text


def build_table(samples: dict, systems: list) -> tuple[str, list[str]]:
    """One row per metric, one column per system column; a column's cell takes the
    samples of every system that fills that column."""
    notes: list[str] = []
    by_col = {c: [s.name for s in systems if s.column == c] for c in plan.COLUMNS}
    cols = [c for c in plan.COLUMNS if by_col[c]]
    lines = ["| metric | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    section = None
    for key, label, kind in plan.ROWS:
        if key == "section":
            section = f"| *{label}* |" + " |" * len(cols)
            continue
        cells = []
        for c in cols:
            vals = [v for name in by_col[c] for v in samples.get(name, {}).get(key, [])]
            cells.append(cell(vals, kind, notes))
        if any(x != "–" for x in cells):
            if section:
                lines.append(section)
                section = None
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines), notes


def _per_pass(samples: dict, num: tuple, den: tuple | None) -> list[float]:
    a = samples.get(num[0], {}).get(num[1], [])
    if den is None:
        return [x for x in a if isinstance(x, int | float)]
    b = samples.get(den[0], {}).get(den[1], [])
    return [x / y for x, y in zip(a, b, strict=False)
            if isinstance(x, int | float) and isinstance(y, int | float) and y]


def _verdict(value: float, op: str, limit: float) -> str:
    ok = value >= limit if op == ">=" else value <= limit
    return "✔" if ok else "✘"


def build_targets(samples: dict) -> str:
    lines = ["| target | per pass | median | limit | met |", "|---|---|---|---|---|"]
    for label, num, den, op, limit, kind in plan.TARGETS:
        vals = _per_pass(samples, num, den)
        if not vals:
            continue
        med = statistics.median(vals)
        lines.append(f"| {label} | {' / '.join(fmt_value(v, kind) for v in vals)} | "
                     f"{fmt_value(med, kind)} | {op} {fmt_value(limit, kind)} | "
                     f"{_verdict(med, op, limit)} |")
    for plain, scaled in plan.SCALE_PAIRS:
        for key, label, kind in plan.ROWS:
            if kind not in ("rate", "ms", "s") or key not in samples.get(scaled, {}) \
                    or key not in samples.get(plain, {}):
                continue
            # cost factor: slower at scale is > 1 for rates and for times alike
            vals = (_per_pass(samples, (plain, key), (scaled, key)) if kind == "rate"
                    else _per_pass(samples, (scaled, key), (plain, key)))
            if not vals:
                continue
            med = statistics.median(vals) - 1
            costs = " / ".join(f"{v - 1:+.0%}" for v in vals)
            lines.append(f"| at scale: {label} | {costs} | {med:+.0%} | "
                         f"<= +{plan.SCALE_COST_LIMIT:.0%} | "
                         f"{_verdict(med, '<=', plan.SCALE_COST_LIMIT)} |")
    return "\n".join(lines)


def machine_info() -> list[str]:
    cpu, mem = "?", "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in
                   Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
        mem = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    try:
        with common.pg_connect("postgres") as c:
            pg = common.scalar(c, "SHOW server_version")
            pg_conf = ", ".join(f"{n} {common.scalar(c, f'SHOW {n}')}" for n in
                                ("shared_buffers", "synchronous_commit", "max_connections"))
    except Exception as exc:
        pg, pg_conf = f"unreachable ({exc})", ""
    try:
        import redis

        rv = redis.Redis.from_url(f"{common.REDIS_URL_BASE}/0").info("server")["redis_version"]
    except Exception as exc:
        rv = f"unreachable ({type(exc).__name__})"
    pkgs = []
    for name in ("eventjobs", "Django", "psycopg", "django-tasks-db", "procrastinate", "pgqueuer",
                 "asyncpg", "uvloop", "celery", "kombu", "redis", "hiredis"):
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
        f"- PostgreSQL {pg} at {common.SERVER.where} ({pg_conf})",
        f"- Redis {rv} at {common.REDIS_URL_BASE}",
        f"- Python {platform.python_version()}; {', '.join(pkgs)}",
    ]
