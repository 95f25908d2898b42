"""Every named query is defined once, in one file, and used by the code."""

import re
from pathlib import Path

import pytest

from eventjobs.sql import SQL_DIR, load

ROOT = Path(__file__).resolve().parents[2] / "eventjobs"
SQL_FILES = sorted(p.name for p in SQL_DIR.glob("*.sql"))


def _names(filename: str) -> list[str]:
    return re.findall(r"^-- name: (\S+)", (SQL_DIR / filename).read_text(), flags=re.M)


@pytest.mark.parametrize("filename", SQL_FILES)
def test_each_query_is_defined_once(filename):
    names = _names(filename)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert set(load(filename)) == set(names)


@pytest.mark.parametrize("filename", SQL_FILES)
def test_each_query_is_used(filename):
    # A query is run by its name, as a string literal in the module that executes it.
    code = "\n".join(p.read_text() for p in ROOT.rglob("*.py"))
    used = set(re.findall(r'"(\w+)"', code))
    unused = set(_names(filename)) - used
    assert not unused, f"{filename}: queries nobody runs: {sorted(unused)}"
