"""The benchmark harness still runs: one tiny eventjobs-only pass (`bench/run.py --smoke`)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_harness_smoke_run():
    proc = subprocess.run([sys.executable, "bench/run.py", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (ROOT / "bench" / ".tmp" / "smoke-results.md").read_text()
    results = report.split("## Results", 1)[1].split("## Method", 1)[0]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in results.splitlines() if line.startswith("| ") and "---" not in line}
    for metric in ("drain, 1 worker process (jobs/s)", "consume backlog, 1 group, 1 process "
                   "(events/s)", "enqueue -> start latency p50 (ms)"):
        assert float(rows[metric].split()[0].replace(",", "")) > 0, rows
