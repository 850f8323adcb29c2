"""The dataset store: duplicates, statuses, mixed methods, splits, and exact round trips through extxyz.

Every store test runs on both backends (the ``store`` fixture of conftest.py: an SQLite file and a database on a
PostgreSQL server of its own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from mlpkit.data import Dataset, Label
from mlpkit.errors import InputError, LabelFailure, MixedMethodError

METHOD = "pyscf:PBE/def2-SVP"
TESTS_DIR = Path(__file__).resolve().parent
SHARED = TESTS_DIR / "data" / "h2o-pbe-svp-500K-nve.extxyz"


def bare(frames):
    out = []
    for a in frames:
        b = a.copy()
        b.calc = None
        out.append(b)
    return out


def test_duplicate_hashes_are_no_ops(store, tmp_path, water_frames):
    ds = Dataset(store())
    first = ds.add(bare(water_frames[:10]), method=METHOD, source="md")
    assert (first.added, first.duplicates) == (10, 0)
    # The same configurations again, plus ones that only differ below the hash precision: nothing new.
    again = bare(water_frames[:10])
    again[3].positions += 1e-9
    second = ds.add(again + bare(water_frames[10:12]), method=METHOD, source="md")
    assert (second.added, second.duplicates) == (2, 10)
    assert len(ds) == 12
    # a duplicate inside one call is skipped too
    third = ds.add(bare(water_frames[20:21]) * 3, method=METHOD, source="md")
    assert (third.added, third.duplicates) == (1, 2)
    # a real displacement is a new configuration
    moved = bare(water_frames[:1])
    moved[0].positions[0, 0] += 1e-4
    assert ds.add(moved, method=METHOD, source="md").added == 1
    # the same geometry for another level of theory is its own row (labels of two methods never collide)
    assert ds.add(bare(water_frames[:1]), method="tblite:GFN2-xTB", source="md").added == 1
    # labelled import of configurations already stored as labelled: no-op
    ds2 = Dataset(store("w2"))
    assert ds2.add(water_frames[:5], method=METHOD, source="ref", labelled=True).added == 5
    assert ds2.add(water_frames[:5], method=METHOD, source="ref", labelled=True).added == 0
    assert ds2.count(status="labelled") == 5


def test_labels_failures_and_reset(store, tmp_path, water_frames):
    ds = Dataset(store())
    rep = ds.add(bare(water_frames[:3]), method=METHOD, source="md")
    assert ds.count(status="pending") == 3
    ref = water_frames[0]
    label = Label(energy=ref.get_potential_energy(), forces=ref.get_forces(), seconds=1.5)
    ds.record_label(rep.ids[0], label)
    ds.record_failure(rep.ids[1], "SCF did not converge after 3 attempts", seconds=2.0)
    with pytest.raises(LabelFailure):
        ds.record_label(rep.ids[2], Label(energy=float("nan"), forces=ref.get_forces()))
    assert [r.status for r in ds.rows()] == ["labelled", "failed", "pending"]
    failed = ds.to_atoms(status="failed")[0]
    assert failed.calc is None and "SCF did not converge" in failed.info["error"]
    got = ds.to_atoms()[0]
    assert got.get_potential_energy() == ref.get_potential_energy()
    assert np.array_equal(got.get_forces(), ref.get_forces())
    assert got.info["seconds"] == 1.5 and got.info["method"] == METHOD
    assert ds.reset_failed(METHOD) == 1
    assert ds.count(status="pending") == 2
    assert [row_id for row_id, _ in ds.pending(METHOD)] == list(rep.ids[1:])


def test_mixed_methods_refused(store, tmp_path, water_frames):
    ds = Dataset(store())
    ds.add(water_frames[:4], method=METHOD, source="a", labelled=True)
    ds.add(water_frames[4:6], method="tblite:GFN2-xTB", source="b", labelled=True)
    with pytest.raises(MixedMethodError, match="2 methods"):
        ds.to_atoms()
    with pytest.raises(MixedMethodError):
        ds.export_extxyz(tmp_path / "x.extxyz")
    assert not (tmp_path / "x.extxyz").exists()
    assert len(ds.to_atoms(method=METHOD)) == 4
    assert len(ds.to_atoms(allow_mixed_methods=True)) == 6
    assert ds.methods() == [METHOD, "tblite:GFN2-xTB"]


def test_extxyz_round_trip_is_bit_for_bit(store, tmp_path, shared_data):
    """Shared file -> store -> extxyz -> ase.io: every energy and force identical (==, not approx)."""
    original = read(shared_data / "h2o-pbe-svp-500K-nve.extxyz", ":")
    ds = Dataset(store())
    rep = ds.import_extxyz(shared_data / "h2o-pbe-svp-500K-nve.extxyz")
    assert rep.added == len(original) == 300
    # the store keeps float64 exactly
    stored = ds.to_atoms()
    for a, b in zip(original, stored, strict=True):
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.array_equal(a.get_forces(), b.get_forces())
        assert np.array_equal(a.positions, b.positions)
        assert b.info["method"] == a.info["method"] == "pyscf:PBE/def2-SVP"
    assert ds.export_extxyz(tmp_path / "out.extxyz") == 300
    back = read(tmp_path / "out.extxyz", ":")
    for a, b in zip(original, back, strict=True):
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.array_equal(a.get_forces(), b.get_forces())
        assert np.array_equal(a.positions, b.positions)
    # importing the export again adds nothing
    assert Dataset(store()).import_extxyz(tmp_path / "out.extxyz").added == 0


def test_extxyz_precision_of_arbitrary_floats(store, tmp_path, water_frames):
    """Honest precision: energies survive extxyz exactly (repr), per-atom arrays to 8 decimals (|error| <= 5e-9)."""
    rng = np.random.default_rng(7)
    frames = bare(water_frames[:5])
    for a in frames:
        a.calc = SinglePointCalculator(a, energy=float(rng.normal() * 1e3), forces=rng.normal(size=(3, 3)))
    ds = Dataset(store())
    ds.add(frames, method=METHOD, source="r", labelled=True)
    ds.export_extxyz(tmp_path / "o.extxyz")
    back = read(tmp_path / "o.extxyz", ":")
    for a, b in zip(frames, back, strict=True):
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.abs(a.get_forces() - b.get_forces()).max() <= 5e-9
    # the store itself is exact for any float64
    for a, b in zip(frames, ds.to_atoms(), strict=True):
        assert np.array_equal(a.get_forces(), b.get_forces())


def test_splits_seeded_and_stable(store, tmp_path, water_frames):
    ds = Dataset(store())
    ds.add(water_frames[:50], method=METHOD, source="md", labelled=True)
    counts = ds.assign_splits((0.8, 0.1, 0.1), seed=3)
    assert dict(counts) == {"train": 40, "valid": 5, "test": 5}
    tags = {r.id: r.split for r in ds.rows()}
    # rerunning keeps existing tags; a second store with the same seed gets the same tags
    assert sum(ds.assign_splits((0.8, 0.1, 0.1), seed=99).values()) == 0
    ds2 = Dataset(store("w2"))
    ds2.add(water_frames[:50], method=METHOD, source="md", labelled=True)
    ds2.assign_splits((0.8, 0.1, 0.1), seed=3)
    assert {r.id: r.split for r in ds2.rows()} == tags
    train = {a.info["hash"] for a in ds.to_atoms(split="train")}
    test = {a.info["hash"] for a in ds.to_atoms(split="test")}
    assert len(train) == 40 and not train & test
    with pytest.raises(InputError):
        ds.assign_splits((0.5, 0.2, 0.2))


def test_bad_database_paths(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Dataset(tmp_path / "missing" / "w.db")
    with pytest.raises(InputError, match=r"\.db"):
        Dataset(tmp_path / "w.txt")
    assert not (tmp_path / "missing").exists()


def test_labelled_import_needs_energy_and_forces(store, tmp_path, water_frames):
    path = tmp_path / "nolabels.extxyz"
    write(path, bare(water_frames[:2]))
    ds = Dataset(store())
    with pytest.raises(InputError):
        ds.import_extxyz(path, method=METHOD)
    assert len(ds) == 0


def test_writes_are_atomic(store, tmp_path, water_frames):
    """A write that fails half-way, or whose process is killed (-9) half-way, leaves the store as it was."""
    ds = Dataset(store())
    ds.add(water_frames[:2], method=METHOD, source="a", labelled=True)
    frames = water_frames[2:8]
    forces = frames[3].get_forces().copy()
    forces[0, 0] = np.nan
    frames[3].calc = SinglePointCalculator(frames[3], energy=frames[3].get_potential_energy(), forces=forces)
    with pytest.raises(LabelFailure):
        ds.add(frames, method=METHOD, source="b", labelled=True)  # rows 0-2 written in the transaction, then this
    assert len(ds) == 2 and Dataset(store()).count(source="b") == 0
    # the same object (and another process) can write again at once: no connection or lock left behind
    assert ds.add(water_frames[2:5], method=METHOD, source="b", labelled=True).added == 3

    marker = tmp_path / "in-transaction"
    code = (
        "import sys; from ase.io import read; from helpers_labelling import slow_frames; from mlpkit.data import "
        f"Dataset; Dataset({store()!r}).add(slow_frames(read({str(SHARED)!r}, '10:30'), {str(marker)!r}, 12), "
        f"method={METHOD!r}, source='killed', labelled=True)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the writer never reached the middle of its transaction"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert Dataset(store()).count(source="killed") == 0 and len(Dataset(store())) == 5
    assert Dataset(store()).add(water_frames[10:12], method=METHOD, source="after", labelled=True).added == 2


def test_concurrent_writers_from_two_dask_workers(store, water_frames):
    """Two Dask worker processes add and label the same 30 configurations at once (in opposite orders): each
    (hash, method) is stored once, each id handed back is the row of that configuration."""
    from distributed import Client, LocalCluster

    from helpers_labelling import add_one_by_one

    url = store()
    Dataset(url).add(bare(water_frames[:1]), method=METHOD, source="seed")
    images = bare(water_frames[:30])
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        workers = sorted(client.scheduler_info()["workers"])
        start_at = time.time() + 3
        futures = [
            client.submit(add_one_by_one, url, imgs, METHOD, start_at, workers=[w], pure=False)
            for w, imgs in zip(workers, (images[1:], images[::-1]), strict=True)
        ]
        results = client.gather(futures)
    ds = Dataset(url)
    rows = list(ds.rows())
    hashes = [r.hash for r in rows]
    assert len(rows) == 30 and len(set(hashes)) == 30
    assert sum(len(r) for r in results) == 29  # every configuration added by exactly one of the two
    by_id = {r.id: r for r in rows}
    for row_id, h in results[0] + results[1]:
        assert by_id[row_id].hash == h and by_id[row_id].status == "labelled"
    assert ds.count(status="pending") == 1  # the seed row


def test_postgresql_url_without_the_extra_says_what_to_install(monkeypatch):
    from mlpkit.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "mlpkit.data._postgres", None)  # as if psycopg2 / ase-db-backends were absent
    with pytest.raises(MissingDependencyError, match=r"mlpkit\[postgres\]"):
        Dataset("postgresql://user@127.0.0.1:5432/mlpkit")
