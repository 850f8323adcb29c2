"""Shared fixtures. Keep this file small and generic; put area-specific fixtures in your own test files."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlpkit.threads

# The suite's own thread layout, set before any test module imports numpy or torch: tests on a busy machine
# otherwise run one spinning OpenMP thread per core (past 60 min instead of about 2 on 2 cores).
mlpkit.threads.configure_threads()

REPO_ROOT = Path(__file__).resolve().parents[1]
#: the suite's reference data, committed with it (tests/data/make_reference_data.py made it), so that a clone
#: and CI run the same tests on the same numbers
SHARED_DATA = REPO_ROOT / "tests" / "data"
WATER_FILE = SHARED_DATA / "h2o-pbe-svp-500K-nve.extxyz"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the committed reference extxyz (PBE/def2-SVP water, 300 frames; see make_reference_data.py)."""
    assert WATER_FILE.exists(), f"{WATER_FILE} is missing: run tests/data/make_reference_data.py"
    return SHARED_DATA


@pytest.fixture(scope="session")
def _water_frames_cached(shared_data):
    from ase.io import read

    return read(shared_data / WATER_FILE.name, index=":")


@pytest.fixture
def water_frames(_water_frames_cached):
    """The 300 frames of tests/data/h2o-pbe-svp-500K-nve.extxyz as read by ase.io (energy, forces, info).

    Fresh copies for each test (calculators included), so a test may change them freely.
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for atoms in _water_frames_cached:
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **atoms.calc.results)
        frames.append(copy)
    return frames


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of its own for the session (tests/pg_server.py); skips where none can start."""
    import pg_server

    reason = pg_server.why_not()
    if reason:
        pytest.skip(reason)
    server = pg_server.start_server()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The store's tests run on both backends: ``store(name)`` is the location of a store, new for each name
    (an SQLite file in tmp_path, or a fresh database on the session's PostgreSQL server); the same name gives
    the same store again."""
    made: dict[str, str] = {}

    def location(name: str = "w") -> str:
        if name not in made:
            if request.param == "sqlite":
                made[name] = str(tmp_path / f"{name}.db")
            else:
                made[name] = request.getfixturevalue("postgres_server").create_database(name)
        return made[name]

    if request.param == "postgresql":
        request.getfixturevalue("postgres_server")  # skip early, with the reason, where no server can start
    return location
