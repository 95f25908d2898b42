"""Named SQL loaded from eventjobs/sql/*.sql (`-- name: x` starts each query)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent


@cache
def load(filename: str) -> dict[str, str]:
    """Return {name: sql} for one file of named queries."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (SQL_DIR / filename).read_text().splitlines():
        if line.startswith("-- name:"):
            current = queries.setdefault(line.split(":", 1)[1].strip(), [])
        elif current is not None and not line.startswith("--"):
            current.append(line)
    return {name: "\n".join(lines).strip().rstrip(";") for name, lines in queries.items()}


def query(filename: str, name: str) -> str:
    """One named query; KeyError names the missing query."""
    return load(filename)[name]
