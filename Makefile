# yuyue: `make run` starts a demo server, `make test` runs the checks and the tests on every database.
.PHONY: run test lint format clean distclean

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
MYPY_PATHS := src/yuyue/core $(wildcard src/yuyue/*/services.py) src/yuyue/catalog/policy.py src/yuyue/catalog/kinds.py \
  src/yuyue/payments/providers src/yuyue/insights/stats.py src/yuyue/insights/recommend.py src/yuyue/assistant/classifier.py \
  src/yuyue/booking/gate.py src/yuyue/booking/fastpath.py src/yuyue/accounts/tokencache.py

# The MySQL/MariaDB driver only builds where its client library is installed.
EXTRAS := dev$(shell (pkg-config --exists libmariadb || pkg-config --exists mysqlclient) 2>/dev/null && echo ,mysql)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when pyproject.toml is newer than the stamp of that set of extras.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

run: $(VENV)/.installed-dev
	$(VENV)/bin/yuyue demo --url http://$(HOST):$(PORT)
	$(VENV)/bin/yuyue serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-$(EXTRAS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(MYPY_PATHS)
	$(VENV)/bin/bandit -q -r src -c pyproject.toml --severity-level high
	$(PY) scripts/audit_deps.py
	$(PY) scripts/test_all_databases.py $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(MYPY_PATHS)

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Leaves the virtual environment and the local database (yuyue.sqlite3) alone; see distclean.
clean:
	rm -rf build dist src/*.egg-info staticfiles test-results .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
