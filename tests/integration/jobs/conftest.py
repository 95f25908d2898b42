import pytest

from eventjobs.db import connection_params
from eventjobs.jobs.worker import ChildWorker, WorkerConfig


@pytest.fixture
def run_worker(transactional_db):
    """Run a worker loop in this process until no job is due (like `runworker --burst`)."""

    def run(queues=("default", "other"), max_wait: float | None = None, **overrides):
        import time

        config = WorkerConfig(
            backend_alias="default", db_params=connection_params("default"), queues=list(queues),
            lease_seconds=30, heartbeat_seconds=10, poll_seconds=0.2, grace_seconds=5,
            import_grace_seconds=600, listen=False, burst=True,
            settings_module="tests.settings",
            burst_deadline=time.time() + max_wait if max_wait else None, **overrides,
        )
        worker = ChildWorker(config)
        worker.start()
        try:
            while worker.run_once():
                pass
        finally:
            worker.shutdown()
        return worker

    return run
