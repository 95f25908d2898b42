"""Run the stock `pgq` CLI with one shim (see peers-baseline.md, failure 1).

pgqueuer 1.6.0 with typer 0.29 passes --log-level to setup_fancy_logger as a str,
which crashes with "'str' object has no attribute 'name'". Convert it to LogLevel.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pgqueuer.core import logconfig  # noqa: E402

_orig = logconfig.setup_fancy_logger


def _setup(level):
    if isinstance(level, str):
        level = logconfig.LogLevel[level.upper()]
    return _orig(level)


logconfig.setup_fancy_logger = _setup

from pgqueuer.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main()
