"""A Redis Streams consumer: XREADGROUP COUNT 100 + one XACK per batch (redis-py + hiredis).

    python redis_consumer.py URL STREAM GROUP CONSUMER
Runs until SIGTERM. Entries carrying a `t0` field record their latency.
"""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from common import record_latency  # noqa: E402

stop = False


def _term(*_):
    global stop
    stop = True


def main():
    url, stream, group, consumer = sys.argv[1:5]
    signal.signal(signal.SIGTERM, _term)
    r = redis.Redis.from_url(url)
    while not stop:
        resp = r.xreadgroup(group, consumer, {stream: ">"}, count=100, block=200)
        if not resp:
            continue
        for _, entries in resp:
            ids = []
            for eid, fields in entries:
                ids.append(eid)
                t0 = fields.get(b"t0")
                if t0 is not None:
                    record_latency(t0.decode())
            r.xack(stream, group, *ids)


if __name__ == "__main__":
    main()
