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

# Benchmarks on the local PostgreSQL (databases billable_bench*, made and dropped by the run itself); about
# 13 minutes on 2 cores. BENCH_ARGS passes options, e.g. `make bench BENCH_ARGS="ingest --entries 10000"`.
bench: install
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null) \
		|| echo "wrk could not be installed: the web benchmark uses bench/loadgen.py instead"
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect "$$(ls /etc/postgresql)" main start
	@for _ in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
