"""Celery app for the benchmark: Redis broker on loopback, no result backend.

Celery prefetches, so its queue shows no completion; the task ends with one
Redis INCR as the completion counter (one extra loopback round trip per job).
"""

import os

import redis
from celery import Celery
from common import record_latency

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/15")
QUEUE = "bench_celery"
COUNTER = "bench:celery:done"

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_r = redis.Redis.from_url(BROKER)


@app.task(name="noop")
def noop(t0=None):
    if t0 is not None:
        record_latency(t0)
    _r.incr(COUNTER)
