"""S19b: a worker whose lease renewals cannot reach the database.

Worker A connects as a role of its own. While A runs a long job J that watches
`eventjobs.lease_lost()`, a trigger spies on which backend renews J's lease; that
backend is terminated and the role's CONNECTION LIMIT set to 0, so it cannot come back,
while A's other connections stay up. Worker B (another role) keeps running. Then:
- within the lease, A stops claiming jobs it could not renew (a trigger logs every
  claim with the claiming backend; the process holding the cut renewer and its worker
  children must stop);
- J, still running on A, sees `eventjobs.lease_lost()` become True within the lease;
- J is rescued once: B runs it a second time and it ends SUCCESSFUL with attempt 2;
- once the role may connect again, A resumes claiming, and no quick job is lost.
This needs no knowledge of which of A's connections renews leases.
"""

from __future__ import annotations

import threading
import time

import pytest

from eventjobs.models import Job
from tests.conftest import wait_until
from tests.reliability import procs as ptree
from tests.reliability.clients import Client, Outcomes, job_writer
from tests.reliability.oracle import read_marks
from tests.reliability.scenario import still_running, verdict, wait_ready
from tests.testapp.models import Ledger
from tests.testapp.tasks import rel_job, rel_lease_watch

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(180)]

ROLE = "lease_victim"
LEASE = 3.0
SLACK = 1.5  # heartbeat period, polling and a loaded machine

WATCH_SQL = """
CREATE TABLE reliability_renewal (pid int, job_id bigint, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE reliability_claim (job_id bigint, role name, pid int,
                                at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION reliability_watch() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    -- A renewal: the same attempt (token) keeps running with a later expiry.
    IF OLD.status = 'RUNNING' AND NEW.status = 'RUNNING' AND NEW.lease_token = OLD.lease_token
       AND NEW.lease_expires_at > OLD.lease_expires_at THEN
        INSERT INTO reliability_renewal (pid, job_id) VALUES (pg_backend_pid(), NEW.id);
    END IF;
    -- A claim, by the role the claiming session logged in as.
    IF NEW.status = 'RUNNING' AND OLD.status <> 'RUNNING' THEN
        INSERT INTO reliability_claim (job_id, role, pid)
        VALUES (NEW.id, session_user, pg_backend_pid());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER reliability_watch AFTER UPDATE ON eventjobs_job
    FOR EACH ROW EXECUTE FUNCTION reliability_watch();
"""

UNWATCH_SQL = """
DROP TRIGGER IF EXISTS reliability_watch ON eventjobs_job;
DROP FUNCTION IF EXISTS reliability_watch();
DROP TABLE IF EXISTS reliability_renewal, reliability_claim;
"""


@pytest.fixture
def victim(pg_cluster, db_name):
    """A login role with the rights a worker needs, and the watching trigger."""
    pg_cluster.sql(f"DROP ROLE IF EXISTS {ROLE}")
    pg_cluster.sql(f"CREATE ROLE {ROLE} LOGIN")
    for grant in (f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}",
                  f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {ROLE}",
                  WATCH_SQL):
        pg_cluster.sql(grant, dbname=db_name)
    yield pg_cluster.url(db_name, user=ROLE)
    pg_cluster.sql(f"ALTER ROLE {ROLE} CONNECTION LIMIT -1")
    pg_cluster.terminate_backends(lambda b: b.user == ROLE)
    pg_cluster.sql(UNWATCH_SQL, dbname=db_name)
    pg_cluster.sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}", dbname=db_name)
    pg_cluster.sql(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE}", dbname=db_name)
    pg_cluster.sql(f"DROP ROLE {ROLE}")


def _db(cluster, db_name: str, query: str, params=None) -> list[tuple]:
    return cluster.sql(query, params, dbname=db_name)


def test_s19b_worker_that_cannot_renew_stops_claiming_and_its_task_learns_it(
        pg_cluster, db_name, start, runlog, victim):
    watched = rel_lease_watch.enqueue("watched", 120)
    a = start("runworker", "--concurrency", "2", env={"DATABASE_URL": victim})
    wait_until(lambda: any(m.phase == "start" and m.key == "watched" for m in read_marks(runlog)),
               timeout=60, message="the watched job running on worker A")
    b = start("runworker", "--concurrency", "2")
    wait_ready(pg_cluster, [a, b], 2)
    quick, stop = Outcomes(), threading.Event()
    ticker = Client("ticker", stop, quick, job_writer(rel_job, "jc", batch=2), seed=1,
                    rollback_rate=0, max_delay=0, pause=0.1)
    ticker.start()
    # A's other child has run a quick job: its task connection is open before the cut
    # (the cut blocks new connections of A; only the renewals are meant to be cut off).
    wait_until(lambda: Ledger.objects.filter(pid__in=ptree.session_pids(a.pid)).exists(),
               timeout=30, message="a quick job run by worker A")
    # Which backend renews the watched job's lease? Two renewals seen: it runs steadily.
    renewals = f"SELECT pid FROM reliability_renewal WHERE job_id = {int(watched.id)}"
    wait_until(lambda: len(_db(pg_cluster, db_name, renewals)) >= 2, timeout=3 * LEASE,
               message="two lease renewals of the watched job")
    renewers = {pid for (pid,) in _db(pg_cluster, db_name, renewals + " AND at > "
                                      "clock_timestamp() - interval '1.5 seconds'")}
    pg_cluster.sql(f"ALTER ROLE {ROLE} CONNECTION LIMIT 0")
    blocked = _blocked_backends(pg_cluster, a.pid, renewers)
    cut = pg_cluster.terminate_backends(lambda backend: backend.pid in renewers)
    cut_at, (cut_db,) = time.time(), _db(pg_cluster, db_name, "SELECT clock_timestamp()")[0]
    problems = [] if cut else [f"harness: renewing backend(s) {renewers} were gone already"]

    wait_until(lambda: Job.objects.get(pk=watched.id).status == "SUCCESSFUL",
               timeout=LEASE + 20, message="the watched job rescued and finished by B")
    time.sleep(max(0.0, cut_at + LEASE + SLACK + 3 - time.time()))  # watch A's claims
    problems += _claims_after_cut(pg_cluster, db_name, cut_db, blocked)
    problems += _task_learned(read_marks(runlog), cut_at, a.pid, b.pid)
    problems += _rescued_once(watched.id)

    pg_cluster.sql(f"ALTER ROLE {ROLE} CONNECTION LIMIT -1")
    lifted = _db(pg_cluster, db_name, "SELECT clock_timestamp()")[0][0]
    claims_since = (f"SELECT count(*) FROM reliability_claim WHERE role = '{ROLE}' "
                    "AND at > %s")
    try:
        wait_until(lambda: _db(pg_cluster, db_name, claims_since, [lifted])[0][0] > 0,
                   timeout=20)
    except AssertionError:
        problems.append("worker A did not claim again within 20s of its role being able to "
                        "connect again")
    stop.set()
    ticker.join(timeout=30)
    try:
        wait_until(lambda: not Job.objects.filter(pk__in=list(quick.acked))
                   .exclude(status="SUCCESSFUL").exists(), timeout=30)
    except AssertionError:
        problems.append("quick jobs not all SUCCESSFUL within 30s")
    problems += still_running([a, b])
    verdict("S19b lease renewals cut off", problems,
            context=f"cut backend(s) {[(c.pid, c.application_name) for c in cut]}; "
                    f"worker A log ends:\n{a.output()[-1200:]}")


def _blocked_backends(cluster, sid: int, renewers: set[int]) -> dict[int, int]:
    """{backend pid: OS pid} of A's backends whose leases the cut renewer(s) renew: those
    of the process holding a renewer, and of its worker children (a supervisor that
    renews for its children). A cannot open new connections: these are all it has."""
    owner = ptree.owners(cluster.backends(), sid)
    renewing = {owner[pid] for pid in renewers if pid in owner}
    domain = renewing | {c for pid in renewing for c in ptree.worker_children(pid)}
    return {backend: pid for backend, pid in owner.items() if pid in domain}


def _claims_after_cut(cluster, db_name: str, cut_db, blocked: dict[int, int]) -> list[str]:
    rows = _db(cluster, db_name, "SELECT job_id, pid, extract(epoch FROM at - %s)::float8 "
               f"FROM reliability_claim WHERE role = '{ROLE}' AND at > %s "
               "ORDER BY at", [cut_db, cut_db])
    late = [(job_id, blocked[pid], round(after, 1)) for job_id, pid, after in rows
            if after > LEASE + SLACK and pid in blocked]
    if late:
        return [f"worker A kept claiming jobs whose leases it could not renew: {len(late)} "
                f"claim(s) more than {LEASE + SLACK}s after its renewals were cut off, "
                f"(job id, claiming process, seconds after) e.g. {late[:8]}"]
    return []


def _task_learned(marks, cut_at: float, a_sid: int, b_sid: int) -> list[str]:
    a_pids = set(ptree.session_pids(a_sid))
    first = [m for m in marks if m.key == "watched" and m.attempt == 1]
    problems = []
    if any(m.phase == "no-api" for m in first):
        problems.append("eventjobs.lease_lost() does not exist: a running task cannot learn "
                        "that its lease is lost")
    lost = [m for m in first if m.phase == "lost"]
    if not lost:
        problems.append(f"the watched job's first attempt never saw eventjobs.lease_lost() "
                        f"return True (marks: {[(m.phase, m.pid) for m in first]})")
    elif lost[0].at - cut_at > LEASE + SLACK:
        problems.append(f"the task learned its lease was lost {lost[0].at - cut_at:.1f}s after "
                        f"the cut, more than the {LEASE}s lease (+{SLACK}s)")
    if first and a_pids and first[0].pid not in a_pids:
        problems.append(f"harness: the first attempt ran in pid {first[0].pid}, not worker A")
    return problems


def _rescued_once(job_id: int) -> list[str]:
    job = Job.objects.filter(pk=job_id).values("status", "attempt", "errors",
                                               "return_value").get()
    if job["attempt"] == 2 and len(job["errors"]) == 1 and \
            (job["return_value"] or {}).get("attempt") == 2:
        return []
    return [f"the watched job was not rescued exactly once: attempt {job['attempt']}, "
            f"errors {[e.get('exception_class_path') for e in job['errors']]}, "
            f"result {job['return_value']}"]
