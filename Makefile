# Billable: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py sync_schedules
	$(PY) manage.py demo --if-empty
	$(PY) manage.py serve --addr 127.0.0.1:8000

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest tests/test_architecture.py
	$(PY) -m pytest

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
