"""Reliability scenarios of `consume` (shared/reliability.md): S6 (SIGKILLs mid-stream),
S20 (random pg_terminate_backend of consume's connections), S24 (one owner per
partition at a time, failover and hand-over), with publishers racing throughout."""

import random
import threading
import time
from collections import Counter

import psycopg
import pytest
from django.db import connection, transaction

import eventjobs
from eventjobs.models import Cursor
from tests.acceptance.events.helpers import consume, handled
from tests.conftest import wait_until
from tests.testapp.models import EventLedger

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]


class Publishers:
    """Threads publishing keyed events in small transactions that commit late and out of
    id order (a few roll back), until stopped; `committed` holds what exists."""

    def __init__(self, n: int, group_hint: str = "", pause: float = 0.01):
        self.committed: list[int] = []
        self.stop = threading.Event()
        self.pause = pause
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        try:
            t = 0
            while not self.stop.is_set():
                t += 1
                try:
                    with transaction.atomic():
                        ids = [eventjobs.publish("race", {"seq": t * 10 + i, "runlog": True},
                                                 key=f"p{n}-{t % 5}").id
                               for i in range(rng.randint(1, 3))]
                        time.sleep(rng.random() * self.pause)  # commit late
                        if rng.random() < 0.05:
                            raise _Rollback()
                    self.committed.extend(ids)
                except _Rollback:
                    pass
                time.sleep(self.pause)
        finally:
            connection.close()


class _Rollback(Exception):
    pass


class PositionWatch(threading.Thread):
    """Samples every cursor's position; `backwards` lists any that moved back."""

    def __init__(self, db_url: str, group: str):
        super().__init__(daemon=True)
        self.db_url, self.group = db_url, group
        self.stop = threading.Event()
        self.backwards: list[tuple] = []
        self.samples = 0

    def run(self) -> None:
        last: dict[int, tuple[int, int]] = {}
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while not self.stop.is_set():
                for partition, txid, event_id in conn.execute(
                        "SELECT partition, txid::text, event_id FROM eventjobs_cursor "
                        "WHERE group_name = %s", [self.group]):
                    position = (int(txid), event_id)
                    if partition in last and position < last[partition]:
                        self.backwards.append((partition, last[partition], position))
                    last[partition] = position
                self.samples += 1
                time.sleep(0.02)


def assert_exactly_once(group: str, committed: list[int]) -> None:
    counts = handled(group)
    missing = set(committed) - set(counts)
    assert not missing, f"{len(missing)} committed event(s) never handled"
    assert set(counts) <= set(committed), "a rolled-back event was handled"
    doubled = {e: n for e, n in counts.items() if n > 1}
    assert not doubled, f"handled twice: {doubled}"


@pytest.mark.timeout(400)
def test_s6_twenty_sigkills_mid_stream_double_nothing_and_never_move_back(spawn, db_url):
    watch = PositionWatch(db_url, "ledger")
    watch.start()
    try:
        proc = consume(spawn, "ledger", EVENTJOBS_BATCH_SIZE=50)
        with Publishers(4) as publishers:
            for kill in range(20):
                before = EventLedger.objects.count()
                wait_until(lambda b=before: EventLedger.objects.count() > b + 20, timeout=60,
                           interval=0.01, message=f"progress before kill {kill + 1}")
                time.sleep(random.random() * 0.05)
                proc.kill_group()  # SIGKILL, usually inside a batch
                proc = consume(spawn, "ledger", EVENTJOBS_BATCH_SIZE=50)
        wait_until(lambda: set(publishers.committed) <= set(handled("ledger")), timeout=120,
                   message="every committed event handled")
    finally:
        watch.stop.set()
        watch.join(5)
    assert watch.samples > 50 and not watch.backwards, watch.backwards
    assert_exactly_once("ledger", publishers.committed)
    assert len(set(EventLedger.objects.values_list("pid", flat=True))) >= 10


@pytest.mark.timeout(400)
def test_s20_random_backend_kills_lose_skip_and_double_nothing(spawn, db_url):
    procs = [consume(spawn, "ledger", "audit") for _ in range(2)]
    wait_until(lambda: Cursor.objects.filter(owner__isnull=False).count() == 8,
               message="both groups owned")
    kills = 0
    with psycopg.connect(db_url, autocommit=True) as killer, Publishers(4) as publishers:
        deadline = time.monotonic() + 15
        rng = random.Random(20)
        while time.monotonic() < deadline:
            pids = [row[0] for row in killer.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE 'eventjobs consume%%'")]
            if pids:
                killer.execute("SELECT pg_terminate_backend(%s)", [rng.choice(pids)])
                kills += 1
            time.sleep(0.2)
    assert kills > 40
    for group in ("ledger", "audit"):
        wait_until(lambda g=group: set(publishers.committed) <= set(handled(g)), timeout=120,
                   message=f"every committed event handled by {group}")
        assert_exactly_once(group, publishers.committed)
    for proc in procs:
        assert proc.popen.poll() is None, proc.output()[-3000:]


@pytest.mark.timeout(300)
def test_s24_one_owner_per_partition_failover_and_a_clean_hand_over(spawn, tmp_path):
    runlog = tmp_path / "runs"
    env = {"EVENTJOBS_CONSUMER_LEASE_SECONDS": 2, "EVENTJOBS_TEST_RUNLOG": runlog}
    a = consume(spawn, "exclusive", **env)
    b = consume(spawn, "exclusive", **env)
    wait_until(lambda: len(set(Cursor.objects.filter(group_id="exclusive")
                               .values_list("owner", flat=True)) - {None}) == 2,
               timeout=30, message="the partitions split between two processes")
    with Publishers(3, pause=0.005) as publishers:
        time.sleep(2)
        a.signal(15)  # SIGTERM: finish the batch, commit, hand over
        assert a.wait(timeout=20) == 0
        time.sleep(1.5)
        runs = Counter(runlog.read_text().split())
        assert set(runs.values()) == {1}, "a clean hand-over delivered an event twice"
        a = consume(spawn, "exclusive", **env)
        wait_until(lambda: len(set(Cursor.objects.filter(group_id="exclusive")
                                   .values_list("owner", flat=True)) - {None}) == 2,
                   timeout=30, message="the restarted process to take its share")
        killed_at = time.monotonic()
        b.kill_group()  # SIGKILL: its partitions move once its connection is gone
        wait_until(lambda: len(set(Cursor.objects.filter(group_id="exclusive")
                                   .values_list("owner", flat=True)) - {None}) == 1
                   and not Cursor.objects.filter(group_id="exclusive", owner=None).exists(),
                   timeout=30, message="the survivor to own every partition")
        failover = time.monotonic() - killed_at
        time.sleep(1)
    wait_until(lambda: set(publishers.committed) <= set(handled("exclusive")), timeout=60,
               message="every committed event handled")
    assert not EventLedger.objects.filter(group="exclusive-overlap").exists(), \
        "two processes handled one key at the same time"
    assert_exactly_once("exclusive", publishers.committed)
    print(f"S24 failover after SIGKILL: {failover:.1f}s")
    assert failover < 20  # the bound is lease + heartbeat (~2.7 s here); generous for load
