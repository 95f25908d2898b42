"""The package is typed for its users: every module postpones annotations, and the wheel
ships the PEP 561 marker (mypy itself runs in `make test`)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "eventjobs"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _first_statement(path: Path) -> ast.stmt | None:
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body[0] if body else None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_starts_with_the_future_import(path):
    first = _first_statement(path)
    assert isinstance(first, ast.ImportFrom) and first.module == "__future__" and [
        alias.name for alias in first.names] == ["annotations"], (
        f"{path.relative_to(ROOT)}: begin with `from __future__ import annotations`")


def test_the_package_ships_its_py_typed_marker():
    assert (PACKAGE / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["eventjobs"]
