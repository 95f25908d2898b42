"""Default concurrency: the host's CPUs are shared among the runworker processes on it
(two runworkers on a 2-core machine run one child each, and oversubscribing the cores
made a drain slower), and followed as runworkers start and stop."""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import wait_until
from tests.reliability.procs import worker_children

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]


def test_two_runworkers_share_the_hosts_cpus_and_one_takes_them_all_when_alone(spawn):
    cpus = os.cpu_count() or 1
    a = spawn("runworker")
    wait_until(lambda: len(worker_children(a.pid)) == cpus, timeout=30,
               message=f"a lone runworker running {cpus} children\n{a.output()[-2000:]}")
    b = spawn("runworker")
    share = max(1, cpus // 2)
    # a gives way as soon as b exists (still setting up): wait for b's own start too, or
    # the SIGTERM below could come before b handles it.
    wait_until(lambda: len(worker_children(a.pid)) == share
               and "runworker starting" in b.output()
               and len(worker_children(b.pid)) == share, timeout=30,
               message=f"both running {share} child(ren)\n{a.output()[-2000:]}")
    b.signal(signal.SIGTERM)
    assert b.wait(timeout=30) == 0
    wait_until(lambda: len(worker_children(a.pid)) == cpus, timeout=30,
               message=f"the remaining runworker back to {cpus} children\n{a.output()[-2000:]}")
    assert "runworker process(es) on this host" in a.output()


def test_a_runworker_still_setting_up_counts_as_sharing_the_host(spawn):
    # b is a default runworker that has not named itself yet (its Django set-up is slow);
    # a, started meanwhile, must leave b its share from its first child on.
    cpus = os.cpu_count() or 1
    b = spawn("runworker", env={"EVENTJOBS_TEST_SLOW_SETUP": "6"})
    a = spawn("runworker")
    wait_until(lambda: "runworker starting" in a.output(), timeout=30,
               message=f"a started\n{a.output()[-2000:]}")
    share = max(1, cpus // 2)
    assert f"runworker starting: {share} process(es)" in a.output(), a.output()[-2000:]
    assert "runworker starting" not in b.output()  # b was indeed still setting up
    wait_until(lambda: len(worker_children(b.pid)) == share, timeout=30,
               message=f"b running {share} child(ren)\n{b.output()[-2000:]}")
    assert len(worker_children(a.pid)) == share


def test_an_explicit_concurrency_is_kept_whatever_else_runs(spawn):
    a = spawn("runworker", "--concurrency", "2")
    b = spawn("runworker", "--concurrency", "1")
    wait_until(lambda: len(worker_children(a.pid)) == 2 and len(worker_children(b.pid)) == 1,
               timeout=30, message="the children each was told to run")
