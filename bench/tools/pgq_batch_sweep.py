"""Which `pgq run --batch-size` drains fastest here? (How PgQueuer's figure is chosen.)

    bench/.venv/bin/python bench/tools/pgq_batch_sweep.py [--rounds 2] [--n 20000]

For each round and each batch size (order alternating between rounds): n no-op jobs
enqueued in bulk, two `pgq run --mode drain --batch-size B` started together; prints
first job picked -> last finished (jobs/s) and spawn -> last finished, per size, and
the median per size. Uses its own database bench_pgq_sweep on DATABASE_URL's server.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from systems import pgqueuer_sys as pq  # noqa: E402

SIZES = [10, 25, 50, 100, 200, 500, 1000]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    help="comma-separated batch sizes (default %(default)s)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    common.install_cleanup()
    db = "bench_pgq_sweep"
    common.create_db(db)
    cfg = {"db": db, "timeout": 300, "pgq_batch": sizes[0]}
    pq.setup(cfg)
    got: dict[int, list[float]] = {b: [] for b in sizes}
    try:
        for r in range(args.rounds):
            for b in sizes if r % 2 == 0 else sizes[::-1]:
                cfg["pgq_batch"] = b
                f = pq._drain(cfg, 2, args.n, lambda conn: pq._bulk(pq._q(conn), args.n),
                              f"pgq-sweep-{b}")
                got[b].append(f["busy"])
                print(f"round {r + 1} batch {b:>3}: {f['busy']:8,.0f} jobs/s running, "
                      f"{f['to_empty']:8,.0f} jobs/s from spawn", flush=True)
    finally:
        common.drop_db(db)
    for b in sizes:
        print(f"batch {b:>3}: median {statistics.median(got[b]):8,.0f} jobs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
