"""EXPLAIN helpers for the claim-plan tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

from eventjobs.db import django_connection
from eventjobs.sql import query


def explain(name: str, params: dict) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of the named jobs.sql statement, rolled back (a claim
    would claim otherwise); the top of the plan, with its "Plan"."""
    conn = django_connection("default")
    with conn.transaction(force_rollback=True):
        row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query('jobs.sql', name)}",
                           params).fetchone()
    return (json.loads(row[0]) if isinstance(row[0], str) else row[0])[0]


def nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", ()):
        yield from nodes(child)


def indexes_of(scan: dict) -> set:
    """The index a scan reads: its own, or its bitmap index scans' for a bitmap heap scan
    (which statistics left by autovacuum may choose); None for a sequential scan."""
    if scan["Node Type"] == "Bitmap Heap Scan":
        return {n.get("Index Name") for n in nodes(scan) if n is not scan}
    return {scan.get("Index Name")}
