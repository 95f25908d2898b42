"""The no-op event consumer (group "bench") used by the event benchmarks.

Its only work: the latency timestamp of events that carry one, and, once per process,
the time it handled its first event (BENCH_FIRST_FILE), so the harness can take the
process's start-up out of a consume figure without watching the database.
"""

from measure import record_first, record_latency

import eventjobs

_first_seen = False


@eventjobs.consumer("bench", types=None)
def handler(event):
    global _first_seen
    if not _first_seen:
        _first_seen = True
        record_first()
    data = event.data
    if data and isinstance(data, dict) and "t0" in data:
        record_latency(data["t0"])
