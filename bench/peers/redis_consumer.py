"""A Redis Streams consumer as a throughput-minded user writes it: each round trip is one
pipeline holding the XACK of the batch just handled and the XREADGROUP COUNT 100 of the
next (redis-py + hiredis).

    python redis_consumer.py URL STREAM GROUP CONSUMER [--burst]

Runs until SIGTERM; with --burst, exits once a read returns nothing. Entries carrying a
`t0` field record their latency; the first entry handled records its time once
(BENCH_FIRST_FILE), as the eventjobs consumer does.
"""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from measure import record_first, record_latency  # noqa: E402

stop = False


def _term(*_):
    global stop
    stop = True


def main():
    url, stream, group, consumer = sys.argv[1:5]
    burst = "--burst" in sys.argv[5:]
    signal.signal(signal.SIGTERM, _term)
    r = redis.Redis.from_url(url)
    pending: list = []
    first = True
    while not stop:
        pipe = r.pipeline(transaction=False)
        if pending:
            pipe.xack(stream, group, *pending)
        pipe.xreadgroup(group, consumer, {stream: ">"}, count=100,
                        block=None if burst else 200)
        resp = pipe.execute()[-1]
        pending = []
        if not resp:
            if burst:
                break
            continue
        for _, entries in resp:
            if entries and first:
                first = False
                record_first()
            for eid, fields in entries:
                pending.append(eid)
                t0 = fields.get(b"t0")
                if t0 is not None:
                    record_latency(t0.decode())
    if pending:
        r.xack(stream, group, *pending)


if __name__ == "__main__":
    main()
