"""Shared fixtures. Keep this file small and generic; put area-specific fixtures in your own test files."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: the project's shared reference data: ``../shared/data`` next to the repository (also in CI)
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
WATER_FILE = SHARED_DATA / "h2o-pbe-svp-500K-nve.extxyz"
ETHANOL_FILE = SHARED_DATA / "ethanol-pbe-svp-500K.extxyz"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the shared reference extxyz files (PBE/def2-SVP, see its README.md)."""
    if not WATER_FILE.exists():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def _water_frames_cached(shared_data):
    from ase.io import read

    return read(shared_data / WATER_FILE.name, index=":")


@pytest.fixture
def water_frames(_water_frames_cached):
    """The 300 frames of the shared h2o-pbe-svp-500K-nve.extxyz as read by ase.io (energy, forces, info).

    Fresh copies for each test (calculators included), so a test may change them freely.
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for atoms in _water_frames_cached:
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **atoms.calc.results)
        frames.append(copy)
    return frames
