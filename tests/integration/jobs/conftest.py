import pytest

from eventjobs.conf import JobOptions
from eventjobs.db import connect, connection_params
from eventjobs.jobs.child import WorkerConfig
from eventjobs.jobs.reporting import DirectReporter
from eventjobs.jobs.worker import ChildWorker


@pytest.fixture
def run_worker(transactional_db):
    """Run a worker loop in this process until no job is due (like `runworker --burst`),
    recording each outcome at once on its own connection."""
    made = []

    def run(queues=("default", "other"), max_wait: float | None = None, **overrides):
        import time

        config = WorkerConfig(
            backend_alias="default", db_params=connection_params("default"),
            queues=tuple(queues) if queues is not None else None,
            options=JobOptions.from_options({"LEASE_SECONDS": 30, "POLL_SECONDS": 0.2,
                                             "LISTEN": False}),
            burst=True, settings_module="tests.settings",
            burst_deadline=time.time() + max_wait if max_wait else None, **overrides,
        )
        conn = connect(config.db_params, "eventjobs test worker", synchronous_commit=False)
        made.append(conn)
        worker = ChildWorker(config, DirectReporter(conn), conn=conn)
        worker.start()
        try:
            while worker.run_once():
                pass
        finally:
            worker.shutdown()
        return worker

    yield run
    for conn in made:
        conn.close()
