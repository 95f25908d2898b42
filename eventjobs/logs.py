"""Console output of eventjobs' long-running commands when the project configured no logging.

`runworker` and `consume` tell what they do through the `eventjobs` loggers. A project
that configured those loggers (or any of their ancestors, root included) keeps full
control. In one that did not (a new `startproject` site: Django's default logging
only covers the `django` loggers), the commands log to the console at the verbosity
given by `-v`, as Django's own commands print: 0 warnings and errors, 1 also what
happens (start-up, exit summary), 2 and 3 also debug detail.

Worker children spawned after a crash are separate interpreters: they learn the
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
LOGGERS = ("eventjobs", "eventjobs.worker", "eventjobs.maintenance", "eventjobs.scheduler",
           "eventjobs.jobs", "eventjobs.consume", "eventjobs.deadletters", "eventjobs.retention")
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


def heard(logger_name: str, level: int) -> bool:
    """Whether a record at `level` on `logger_name` would reach any handler that emits it
    (its level and filters say yes), as the logging configuration stands."""
    logger = logging.getLogger(logger_name)
    if not logger.isEnabledFor(level):
        return False
    record = logger.makeRecord(logger_name, level, __file__, 0, "probe", (), None)
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level and handler.filter(record):
                return True
        if not current.propagate:
            break
        current = current.parent
    # With no handler anywhere, logging's last resort prints WARNING and above.
    return not found and level >= logging.lastResort.level if logging.lastResort else False


def quiet_unheard(logger_name: str, level: int = logging.INFO) -> bool:
    """In a worker child: when records below WARNING on `logger_name` reach no handler,
    stop creating them (set the logger to WARNING). Django's own receivers log every task's
    start and finish at INFO to "django.tasks"; with Django's default logging and DEBUG off
    nothing shows them, yet building those two records cost a quarter of a no-op job's
    time. Nothing that would have been emitted is lost; returns whether it quietened."""
    if heard(logger_name, level):
        return False
    logging.getLogger(logger_name).setLevel(logging.WARNING)
    return True
