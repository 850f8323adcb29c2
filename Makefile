# The two commands of the README: `make water` (the main job) and `make test` (the test suite).
# Both install everything they need on a fresh machine (Python 3.10+, pip; root for the optional apt step).
PY ?= python3

.PHONY: install install-test gpaw water test test-slow lint bench

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

# GPAW, the optional plane-wave DFT labeler (the `gpaw` extra): libxc and OpenBLAS from apt (root; skipped with a note
# elsewhere), then GPAW compiled without MPI (a plain `pip install gpaw` picks up an MPI compiler wrapper and fails on
# mpi.h, or compiles C++ as C; GPAW_BUILD_JOBS drops _gpaw from the wheel). PAW setups come in the gpaw-data wheel,
# so it runs offline. Ends with one tiny GPAW calculation through mlpkit (docs/reference-methods.md).
GPAW_SITECONFIG ?= build/gpaw-siteconfig.py
gpaw:
	@command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxc-dev libopenblas-dev >/dev/null ; } || \
	  echo "note: not root or no apt-get: install libxc and OpenBLAS (with headers) yourself"
	mkdir -p $(dir $(GPAW_SITECONFIG))
	printf "mpi = False\ncompiler = 'g++'\nlibraries = ['xc', 'openblas']\n" > $(GPAW_SITECONFIG)
	GPAW_CONFIG=$(abspath $(GPAW_SITECONFIG)) $(PY) -m pip install -q -e ".[gpaw]"
	OMP_NUM_THREADS=1 $(PY) -c "from mlpkit.labelers.probe import probe_method as p; r = p('gpaw'); print(r or 'GPAW works'); raise SystemExit(bool(r))"

water: install
	mlpkit run examples/water/mlpkit.yaml

test: install-test
	$(PY) -m pytest

test-slow: install-test
	$(PY) -m pytest -m slow

lint:
	ruff check src tests bench
	ruff format --check src tests bench
