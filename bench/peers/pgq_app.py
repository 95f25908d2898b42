"""PgQueuer factory for `pgq run peers.pgq_app:factory` (DSN from env BENCH_DSN).

The 1.6.0 CLI rejects a plain async factory ("Factory must return an async
context manager"), so it is written with @asynccontextmanager.
"""

import os
from contextlib import asynccontextmanager

import asyncpg
from measure import record_latency
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job


@asynccontextmanager
async def factory():
    conn = await asyncpg.connect(os.environ["BENCH_DSN"])
    driver = AsyncpgDriver(conn)
    pgq = PgQueuer(driver)

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        if job.payload:
            record_latency(float(job.payload.decode()))

    try:
        yield pgq
    finally:
        await conn.close()
