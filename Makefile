# eventjobs developer commands. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/sh
VENV := .venv
PY := $(VENV)/bin/python
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/eventjobs_demo

.PHONY: demo test lint bench db clean

# The virtualenv is rebuilt when pyproject.toml changes. It is made with .ci/find-python's
# Python (PYTHON= chooses it); when none is found, find-python's one line is the whole message.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || { python=$$(.ci/find-python) && "$$python" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

db:
	@.ci/ensure-postgres

# The demo blog: finds PostgreSQL at DATABASE_URL (or starts a private one in .demo/),
# migrates, seeds, and runs the web server, a worker and the consumers until Ctrl+C.
$(VENV)/.installed-demo: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,demo]'
	@touch $@

demo: $(VENV)/.installed-demo
	$(PY) -m demo_blog.run

test: $(VENV)/.installed db
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: db
	$(MAKE) -C bench QUICK=$(QUICK)

clean:
	rm -rf $(VENV) .pytest_cache
