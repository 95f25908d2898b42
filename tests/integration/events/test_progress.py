"""A long `consume` (a backlog, a reset that re-delivers the log) logs each group's count,
rate and position every few seconds (issue 10: long commands show progress)."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command

import eventjobs
from eventjobs.events import process

pytestmark = pytest.mark.django_db(transaction=True)


def test_consume_logs_progress_while_it_works_through_a_backlog(monkeypatch, caplog):
    monkeypatch.setattr(process, "PROGRESS_SECONDS", 0.05)
    eventjobs.publish_many([{"type": "t", "data": {"sleep": 0.002}} for _ in range(300)])

    with caplog.at_level(logging.INFO, logger="eventjobs"):
        call_command("consume", "ledger", "--burst")

    lines = [r.getMessage() for r in caplog.records if "events in" in r.getMessage()]
    assert len(lines) >= 2, caplog.text
    assert all(line.startswith("consume: group ledger handled ") and "/s)" in line
               and "in all; now after event #" in line for line in lines), lines
    totals = [int(line.split("/s), ")[1].split(" in all")[0].replace(",", "")) for line in lines]
    assert totals == sorted(set(totals)) and totals[-1] <= 300, lines
