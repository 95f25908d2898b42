"""Run the tests of one system in this process; called by run.py as a subprocess.

    python sysrun.py MODULE setup|teardown|TEST[,TEST...] JSON_CONFIG

Each test's metrics are printed as `RESULT {...}` lines as soon as they exist; a
test that raises reports "error: ..." for each of its metrics and the rest go on.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def main() -> int:
    module_name, what, cfg_json = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = json.loads(cfg_json)
    common.install_cleanup()
    common.LAT_GAP_MS = float(cfg.get("lat_gap_ms", common.LAT_GAP_MS))
    common.LAT_IDLE = cfg.get("lat_idle", common.LAT_IDLE)
    if cfg.get("tmp_dir"):
        common.TMP_DIR = Path(cfg["tmp_dir"])
    common.STOP_GRACE = cfg.get("stop_grace", common.STOP_GRACE)
    mod = importlib.import_module(f"systems.{module_name}")
    if what.startswith(("setup", "teardown")):
        fn = getattr(mod, what, None)
        if fn is not None:
            fn(cfg)
        common.emit({"_ok": what})
        return 0
    rc = 0
    for test in what.split(","):
        fn, keys = mod.TESTS[test]
        t0 = time.perf_counter()
        try:
            out = fn(cfg) or {}
            common.emit(out)
        except Exception as exc:  # record and go on with the next test
            rc = 1
            msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
            sys.stderr.write("".join(traceback.format_exception(exc, limit=-3)))
            common.emit({k: f"error: {msg}" for k in keys})
        finally:
            common.stop_all()
            common.emit({f"_t_{test}": round(time.perf_counter() - t0, 1)})
    return rc


if __name__ == "__main__":
    sys.exit(main())
