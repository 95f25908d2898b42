"""Console logging of runworker/consume: only when the project configured none."""

from __future__ import annotations

import logging
import os

import pytest

from eventjobs import logs


@pytest.fixture
def clear_logging(monkeypatch):
    """No handler on the eventjobs logger or on root (tests.settings adds one, and pytest
    adds its own to root for each test phase: the fixture is used inside the test)."""

    def clear() -> logging.Logger:
        monkeypatch.setattr(logging.getLogger(), "handlers", [])
        monkeypatch.setattr(logging.getLogger("eventjobs"), "handlers", [])
        monkeypatch.delenv(logs.ENVIRONMENT, raising=False)
        return logging.getLogger("eventjobs")

    return clear


def test_without_configuration_the_console_gets_the_verbosity_asked(clear_logging):
    logger = clear_logging()
    assert not logs.project_configured()
    with logs.console_logging(2):
        [handler] = logger.handlers
        assert isinstance(handler, logs.ConsoleHandler)
        assert logger.level == logging.DEBUG
        assert os.environ[logs.ENVIRONMENT] == "2"  # for the processes it spawns
        with logs.console_logging(0):  # nested: no second handler
            assert len(logger.handlers) == 1 and logger.level == logging.WARNING
    assert logger.handlers == [] and logs.ENVIRONMENT not in os.environ


def test_a_configured_project_keeps_control(clear_logging):
    logger = clear_logging()
    project = logging.StreamHandler()
    logging.getLogger().handlers.append(project)  # e.g. logging.basicConfig()
    assert logs.project_configured()
    with logs.console_logging(3):
        assert logger.handlers == []
        assert logs.ENVIRONMENT not in os.environ


def test_a_child_process_follows_its_parent(clear_logging, monkeypatch):
    logger = clear_logging()
    monkeypatch.setenv(logs.ENVIRONMENT, "1")
    logs.console_logging_from_environment()
    logs.console_logging_from_environment()  # django.setup() twice: still one handler
    [handler] = logger.handlers
    assert isinstance(handler, logs.ConsoleHandler) and logger.level == logging.INFO
    logger.setLevel(logging.NOTSET)
