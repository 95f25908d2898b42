"""Console output of eventjobs' long-running commands when the project configured no logging.

`runworker` and `consume` tell what they do through the `eventjobs` loggers. A project
that configured those loggers (or any of their ancestors, root included) keeps full
control. In one that did not (a new `startproject` site: Django's default logging
only covers the `django` loggers), the commands log to the console at the verbosity
given by `-v`, as Django's own commands print: 0 warnings and errors, 1 also what
happens (start-up, exit summary), 2 and 3 also debug detail.

Worker children are separate processes (spawned, not forked): they learn the
verbosity from an environment variable and set up the same handler in
`EventjobsConfig.ready()`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

LOGGER = "eventjobs"
# The loggers eventjobs writes to (docs/operations.md describes each).
LOGGERS = ("eventjobs", "eventjobs.worker", "eventjobs.maintenance", "eventjobs.consume",
           "eventjobs.deadletters", "eventjobs.retention")
ENVIRONMENT = "EVENTJOBS_CONSOLE_VERBOSITY"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class ConsoleHandler(logging.StreamHandler):
    """The handler eventjobs adds itself (told apart from the project's own)."""


def project_configured() -> bool:
    """True when the project gave the `eventjobs` logger, or one it propagates to, a
    handler (Python's lastResort, used when there is none, does not count)."""
    logger: logging.Logger | None = logging.getLogger(LOGGER)
    while logger is not None:
        if any(not isinstance(h, ConsoleHandler) for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def _attach(verbosity: int) -> ConsoleHandler | None:
    """Add our console handler at `verbosity`; None when the project configured logging
    or ours is there already (then only its level follows `verbosity`)."""
    if project_configured():
        return None
    logger = logging.getLogger(LOGGER)
    logger.setLevel(LEVELS.get(verbosity, logging.DEBUG))
    if any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        return None
    handler = ConsoleHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    return handler


@contextmanager
def console_logging(verbosity: int) -> Iterator[None]:
    """While a command runs: log to the console at `verbosity` unless the project
    configured logging; processes it spawns meanwhile do the same."""
    handler = _attach(verbosity)
    if handler is None:
        yield
        return
    saved = os.environ.get(ENVIRONMENT)
    os.environ[ENVIRONMENT] = str(verbosity)
    try:
        yield
    finally:
        logger = logging.getLogger(LOGGER)
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        if saved is None:
            os.environ.pop(ENVIRONMENT, None)
        else:
            os.environ[ENVIRONMENT] = saved


def console_logging_from_environment() -> None:
    """In a process started by a command under `console_logging`: log like it does."""
    value = os.environ.get(ENVIRONMENT)
    if value and value.isdigit():
        _attach(int(value))
