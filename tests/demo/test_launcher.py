"""`make demo`'s entry point before the servers start: finding PostgreSQL, the private
cluster where none answers, the one-line hint without binaries, reusing what exists."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tests.demo.launcher import (
    demo_env,
    drop_database,
    free_port,
    fresh_database_name,
    run_demo,
)
from tests.server import database_exists, database_url

pytestmark = pytest.mark.timeout(600)

NOBODY = "postgres://postgres@127.0.0.1:{port}/{name}"


def test_prepare_creates_migrates_and_seeds_once_then_reuses():
    name = fresh_database_name()
    env = demo_env(DATABASE_URL=database_url(name))
    try:
        first = run_demo("--prepare-only", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"demo: created database {name}" in first.stdout
        assert database_exists(name)  # on the server DATABASE_URL names, not a fixed one
        assert "created the admin login admin / admin" in first.stdout
        assert "seeded 3 authors and 7 posts" in first.stdout
        second = run_demo("--prepare-only", env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"demo: reusing database {name}" in second.stdout
        assert "the blog has 3 author(s) already; nothing seeded" in second.stdout
        assert "created the admin login" not in second.stdout
    finally:
        drop_database(name)


def test_without_postgres_or_its_binaries_one_line_says_what_to_install():
    env = demo_env(DATABASE_URL=NOBODY.format(port=free_port(), name="nowhere"),
                   DEMO_PG_BIN="/nonexistent/postgresql/*/bin")
    done = run_demo("--prepare-only", env=env, timeout=60)
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    assert "no PostgreSQL answers" in lines[0] and "apt-get install postgresql" in lines[0]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_where_none_answers_a_private_cluster_is_started_reused_and_stopped():
    folder = Path(tempfile.mkdtemp(prefix="demo-pg-", dir="/tmp"))
    os.chmod(folder, 0o755)  # the postgres user must reach it when we are root
    pg_port = free_port()
    env = demo_env(DATABASE_URL=NOBODY.format(port=free_port(), name="eventjobs_demo"),
                   DEMO_PG_DIR=str(folder / "postgres"), DEMO_PG_PORT=str(pg_port))
    try:
        first = run_demo("--prepare-only", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "starting a private one" in first.stdout
        assert f"made and started a private PostgreSQL in {folder / 'postgres'}" in first.stdout
        assert "seeded 3 authors" in first.stdout
        assert "demo: stopped the private PostgreSQL" in first.stdout
        assert not _listening(pg_port)
        assert not (folder / "postgres" / "data" / "postmaster.pid").exists()

        second = run_demo("--prepare-only", env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "demo: started a private PostgreSQL" in second.stdout  # the same cluster
        assert "reusing database eventjobs_demo" in second.stdout
        assert "nothing seeded" in second.stdout
        assert not _listening(pg_port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
