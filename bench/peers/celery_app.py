"""Celery app for the benchmark: Redis broker on loopback, no result backend.

Celery prefetches, so its queue shows no completion, and it has no job table to read
afterwards. The task therefore ends with one Redis INCR (one loopback round trip per job,
inside Celery's figures), and the completion that makes the count 1 or BENCH_EXPECT
records its time: the first as a key, the last pushed on a list the harness blocks on.
"""

import os
import time

import redis
from celery import Celery
from measure import record_latency

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/15")
QUEUE = "bench_celery"
COUNTER = "bench:celery:done"
FIRST = "bench:celery:first"
LAST = "bench:celery:last"
EXPECT = int(os.environ.get("BENCH_EXPECT", "0"))

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
    done = _r.incr(COUNTER)
    if done == 1:
        _r.set(FIRST, repr(time.time()))
    if done == EXPECT:
        _r.rpush(LAST, repr(time.time()))
