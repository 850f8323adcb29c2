# The two commands of the README: `make water` (the main job) and `make test` (the test suite).
# Both install everything they need on a fresh machine (Python 3.10+, pip; root for the optional apt step).
PY ?= python3

.PHONY: install install-test water test test-slow lint bench

install:
	$(PY) -m pip install -q -e .

# Chromium renders the HTML reports in the report tests; without it those tests skip with a reason.
# The postgres extra: the store tests also run on a PostgreSQL server of their own (tests/pg_server.py), which needs
# Debian's postgresql package (.ci/run installs it); without the server binaries those tests skip with a reason.
install-test:
	$(PY) -m pip install -q -e ".[test,postgres]"
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "note: chromium not installed; report-rendering tests will be skipped"

water: install
	mlpkit run examples/water/mlpkit.yaml

test: install-test
	$(PY) -m pytest

test-slow: install-test
	$(PY) -m pytest -m slow

lint:
	ruff check src tests bench
	ruff format --check src tests bench
