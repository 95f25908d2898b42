"""The no-op event consumer (group "bench") used by the event benchmarks.

Registered only when eventjobs has its event API, so the job benchmarks still run
while the event half is missing (the event adapter then reports the error).
"""

from common import record_latency

import eventjobs


def _data(event):
    data = getattr(event, "data", None)
    if data is None and isinstance(event, dict):
        data = event.get("data")
    return data


def handler(event):
    data = _data(event)
    if data and isinstance(data, dict) and "t0" in data:
        record_latency(data["t0"])


try:
    _consumer = eventjobs.consumer
except AttributeError:
    _consumer = None
if _consumer is not None:
    handler = _consumer("bench", types=None)(handler)
