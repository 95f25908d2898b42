"""Procrastinate app for the benchmark (DSN from env BENCH_DSN)."""

import os

import procrastinate
from measure import record_latency

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_DSN", "")),
)


@app.task(name="noop", queue="default")
def noop(t0=None):
    if t0 is not None:
        record_latency(t0)
