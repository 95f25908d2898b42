"""The docs say what the code does: the `eventjobs_status --json` sample has exactly the
keys the command prints, the loggers are named, hints need no repository checkout."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

from eventjobs.checks import check_event_database
from eventjobs.logs import LOGGERS
from eventjobs.models import Worker
from tests.conftest import ROOT
from tests.factories import ConsumerGroupFactory

OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _documented_status() -> dict:
    [sample] = re.findall(r"```json\n(\{\"version\".*?)```", OPERATIONS, re.S)
    return json.loads(sample)


def _shape(value):
    """Keys all the way down (lists: the shape of their first item)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


@pytest.mark.django_db(transaction=True)
def test_status_json_sample_matches_the_command_output():
    ConsumerGroupFactory(name="search-index")
    Worker.objects.create(id="host:123:abcd1234", host="host", pid=123, queues=["default"])
    out = StringIO()
    call_command("eventjobs_status", "--json", stdout=out)
    printed = json.loads(out.getvalue())
    documented = _documented_status()
    assert set(printed) == set(documented)
    assert _shape(printed["workers"]) == _shape(documented["workers"])
    assert _shape(printed["jobs"]["default"]) == _shape(documented["jobs"]["default"])
    group_keys = set(printed["groups"]["search-index"])
    assert group_keys == set(documented["groups"]["search-index"])
    assert _shape(printed["groups"]["search-index"]["position"]) == {"txid": None,
                                                                    "event_id": None}


def _loggers_in_code() -> set[str]:
    """Every `logging.getLogger("eventjobs...")` name in eventjobs/, found afresh each run so
    a logger added later cannot be left out of the docs."""
    found = set()
    for path in (ROOT / "eventjobs").rglob("*.py"):
        found |= set(re.findall(r"""getLogger\(\s*["'](eventjobs(?:\.[\w.]+)?)["']""",
                                path.read_text()))
    return found


def test_operations_and_logs_name_every_logger_the_code_uses():
    in_code = _loggers_in_code()
    assert {"eventjobs", "eventjobs.worker", "eventjobs.consume"} <= in_code  # the grep works
    table = set(re.findall(r"^\| `(eventjobs[\w.]*)` \|", OPERATIONS, re.M))
    assert in_code - table == set(), "loggers missing from docs/operations.md's table"
    assert in_code - set(LOGGERS) == set(), "loggers missing from eventjobs.logs.LOGGERS"
    assert set(LOGGERS) - in_code == set(), "LOGGERS names a logger no code uses"


@pytest.mark.django_db(transaction=True)
def test_idle_timeout_hint_says_what_to_do_inline():
    [w005] = [m for m in check_event_database(databases=["default"]) if m.id == "eventjobs.W005"]
    assert "docs/" not in w005.hint
    assert "ALTER" in w005.hint and "idle_in_transaction_session_timeout" in w005.hint
