"""Runs the demo blog's tests in a pytest of their own, under tests.demo.settings.

The library suite's settings do not install the demo app, and one pytest process has one
settings module; so the library suite runs this one test, which runs the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@pytest.mark.timeout(1200)
def test_the_demo_suite_passes_under_its_own_settings():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "EVENTJOBS_TEST_DB", "PYTEST_ADDOPTS")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "300",
         "--ds", "tests.demo.settings", str(HERE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1150)
    assert done.returncode == 0, f"the demo tests failed:\n{done.stdout[-12000:]}\n{done.stderr[-3000:]}"
