#!/bin/sh
# Build bench/.venv (peers + eventjobs from the repo root) and run the benchmark on the
# PostgreSQL server DATABASE_URL names (default postgresql://postgres@127.0.0.1:5432/).
#   bench/run.sh            full run, writes bench/results.md (about 15 min on 2 cores)
#   QUICK=1 bench/run.sh    one pass, small sizes, every row (about 3 min)
#   bench/run.sh --smoke    tiny eventjobs-only pass (< 60 s), used by the test-suite
set -eu
cd "$(dirname "$0")"

find_python() {
    for cand in "${BENCH_PYTHON:-}" \
        "$(pyenv root 2>/dev/null)"/versions/3.1[2-9]*/bin/python3 \
        python3.13 python3.12 python3; do
        [ -n "$cand" ] || continue
        if "$cand" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
            echo "$cand"; return 0
        fi
    done
    echo "no Python >= 3.12 found (set BENCH_PYTHON)" >&2
    return 1
}

STAMP=.venv/.installed
if [ ! -f "$STAMP" ] || [ requirements.txt -nt "$STAMP" ] || [ ../pyproject.toml -nt "$STAMP" ]; then
    if [ ! -x .venv/bin/python ]; then
        PY=$(find_python)
        "$PY" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt -e ..
    touch "$STAMP"
fi

# PostgreSQL (DATABASE_URL's server) and Redis on loopback are prerequisites; the local
# cluster is started only when DATABASE_URL names none or the default local one.
if ! .venv/bin/python -c 'import common, psycopg; psycopg.connect(common.dsn("postgres")).close()' 2>/dev/null; then
    case "${DATABASE_URL:-}" in
    "" | *@127.0.0.1:5432/* | *@localhost:5432/* | *@127.0.0.1/* | *@localhost/*)
        if command -v pg_ctlcluster >/dev/null 2>&1; then
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
        fi ;;
    esac
fi
if ! .venv/bin/python -c 'import redis; redis.Redis(host="127.0.0.1").ping()' 2>/dev/null; then
    if command -v redis-server >/dev/null 2>&1; then
        redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes || true
    fi
fi

ARGS=""
[ "${QUICK:-}" = "1" ] && ARGS="--quick"
exec .venv/bin/python run.py $ARGS "$@"
