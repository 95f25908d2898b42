"""Fixtures of the reliability scenarios: a private PostgreSQL cluster per test module,
with the Django test database (and so every `spawn`ed process) on it.

pytest-django creates the test database once per session (`django_db_setup`). Here that
fixture is overridden for tests/reliability only, per module: the `default` connection
is pointed at the module's private cluster, the test database is created and migrated
there, and afterwards it is dropped and the connection settings restored, so tests
elsewhere in the same run keep using the machine's cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import Proc
from tests.reliability.cluster import PrivateCluster

SETTINGS = "tests.reliability.settings"
HOOKS = Path(__file__).parent / "hooks"

# Short timings for every scenario process (a test passes its own on top).
BASE_ENV = {
    "DJANGO_SETTINGS_MODULE": SETTINGS,
    "EVENTJOBS_LEASE_SECONDS": "3",
    "EVENTJOBS_POLL_SECONDS": "0.5",
    "EVENTJOBS_GRACE_SECONDS": "5",
    "EVENTJOBS_RETRY_BACKOFF_SECONDS": "0.2",
    "EVENTJOBS_PARTITIONS": "4",
    "EVENTJOBS_CONSUMER_LEASE_SECONDS": "3",
    "EVENTJOBS_CONSUMER_POLL_SECONDS": "0.5",
    "EVENTJOBS_BATCH_SIZE": "100",
}


@pytest.fixture(scope="module")
def pg_cluster(request) -> Iterator[PrivateCluster]:
    """The module's private cluster; a module sets PG_SETTINGS (e.g. max_connections)."""
    cluster = PrivateCluster.create(**getattr(request.module, "PG_SETTINGS", {}))
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def django_db_setup(pg_cluster, django_db_blocker) -> Iterator[None]:
    """The test database, on the module's private cluster (see the module docstring)."""
    from django.test.utils import setup_databases, teardown_databases

    settings_dict = connections["default"].settings_dict
    saved = {key: settings_dict[key] for key in ("HOST", "PORT", "NAME")}
    with django_db_blocker.unblock():
        connections.close_all()
        settings_dict.update(HOST="127.0.0.1", PORT=str(pg_cluster.port))
        db_cfg = setup_databases(verbosity=0, interactive=False, aliases={"default"},
                                 serialized_aliases=set())
    yield
    with django_db_blocker.unblock():
        connections.close_all()
        # Backends of processes killed a moment ago may still be winding down.
        name = settings_dict["NAME"]
        pg_cluster.terminate_backends(lambda b: b.database == name)
        try:
            teardown_databases(db_cfg, verbosity=0)
        finally:
            settings_dict.update(saved)
            connections.close_all()


@pytest.fixture(autouse=True)
def _fresh_connection_for_flush(transactional_db) -> Iterator[None]:
    """A scenario may restart the server under this process's connection: reopen it
    before pytest-django flushes the tables."""
    yield
    connections.close_all()


@pytest.fixture
def db_name(transactional_db) -> str:
    return connections["default"].settings_dict["NAME"]


@pytest.fixture
def runlog(tmp_path) -> Path:
    """The file tasks mark their runs in (tests/testapp/tasks.py _mark)."""
    return tmp_path / "runlog.txt"


@pytest.fixture
def start(spawn, runlog) -> Callable[..., Proc]:
    """start("runworker", "--concurrency", "2", env={...}): a scenario process on the
    private cluster with BASE_ENV timings and the run log."""

    def run(*args: str, env: dict[str, str] | None = None) -> Proc:
        return spawn(*args, env={**BASE_ENV, "EVENTJOBS_TEST_RUNLOG": str(runlog),
                                 **(env or {})})

    return run


def with_connect_log(path: Path) -> dict[str, str]:
    """env for a process whose connection attempts are counted (hooks/sitecustomize)."""
    return {"PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]),
            "EVENTJOBS_TEST_CONNECT_LOG": str(path)}
