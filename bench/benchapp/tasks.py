"""The no-op task used by every Django Tasks backend in the benchmark."""

from common import record_latency
from django.tasks import task


@task
def noop(t0=None):
    # Empty unless the job carries a latency timestamp (see common.record_latency).
    if t0 is not None:
        record_latency(t0)
