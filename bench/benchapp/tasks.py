"""The no-op task used by every Django Tasks backend in the benchmark."""

from django.tasks import task
from measure import record_latency


@task
def noop(t0=None):
    # Empty unless the job carries a latency timestamp (see measure.record_latency).
    if t0 is not None:
        record_latency(t0)
