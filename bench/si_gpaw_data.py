"""Crystalline silicon labelled with GPAW plane-wave PBE: the crystal case of docs/benchmarks/universal.md.

Makes three files in bench/data (small extxyz, energies eV, forces eV/Å, stress eV/Å³ (Voigt, ASE sign)):

- ``si8-gpaw-pbe-train.extxyz`` (40): 13 rattled and strained cells (seed 1) + 27 MD frames from 9 runs
  (300/600/1000 K x volume strain -3/0/+3 %, seeds 100-108);
- ``si8-gpaw-pbe-test.extxyz`` (30): the same recipe from other seeds and separate runs: 12 rattled cells (seed 2) +
  18 MD frames from 9 runs (seeds 200-208);
- ``si8-gpaw-pbe-eos.extxyz`` (7): the perfect crystal at volumes V0 (1 + s), s = -6 ... +6 % (the DFT E-V curve).

Cells: the 8-atom cubic diamond cell around a0 = 5.47 Å (PBE's lattice constant). Rattled cells: a random volume strain
(uniform, -6 ... +6 %), a random symmetric deviatoric strain (each component uniform in +-1.5 %), Gaussian
displacements (sigma uniform 0.02 ... 0.10 Å). MD: CHGNet 0.3.0 (zero-shot, the wheel's weights) drives Langevin
NVT (2 fs, friction 0.02/fs) at fixed strained cells; 200 fs equilibration dropped, then a frame every 100 fs. The
driver is the pretrained model itself (no Stillinger-Weber or EMT route needed); the labels are GPAW's only.

Labels: ``gpaw:PBE/PW350/k3x3x3`` through mlpkit's GPAW labeler (Fermi-Dirac 0.05 eV), one thread. Resumable: frames
already in an output file are kept and labelling continues after them (each label is written atomically). Each
frame's ``info`` records ``source``, ``label_seconds`` (wall) and ``label_cpu_seconds`` (user+sys).

    OMP_NUM_THREADS=1 python bench/si_gpaw_data.py            # ~12 CPU-minutes of GPAW
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from mlpkit.files import atomic_write_images, read_images

DATA = Path(__file__).resolve().parent / "data"
A0 = 5.47  # Å, PBE (the EOS centre and the unstrained cell)
ECUT, KPTS, WIDTH = 350.0, (3, 3, 3), 0.05
TEMPERATURES = (300.0, 600.0, 1000.0)
VOLUME_STRAINS = (-0.03, 0.0, 0.03)
EOS_STRAINS = tuple(np.linspace(-0.06, 0.06, 7))


def si8(volume_strain: float = 0.0) -> Atoms:
    """The 8-atom cubic diamond cell at a0 = 5.47 Å, volume scaled by (1 + volume_strain)."""
    atoms = bulk("Si", "diamond", a=A0, cubic=True)
    atoms.set_cell(atoms.cell * (1.0 + volume_strain) ** (1 / 3), scale_atoms=True)
    return atoms


def rattled(n: int, seed: int) -> list[Atoms]:
    """``n`` cells with random volume (-6...+6 %) and deviatoric (+-1.5 %) strain and Gaussian displacements."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = si8(float(rng.uniform(-0.06, 0.06)))
        dev = rng.uniform(-0.015, 0.015, (3, 3))
        dev = 0.5 * (dev + dev.T)
        dev -= np.trace(dev) / 3 * np.eye(3)  # volume-preserving
        atoms.set_cell(atoms.cell @ (np.eye(3) + dev), scale_atoms=True)
        sigma = float(rng.uniform(0.02, 0.10))
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        atoms.info["source"] = f"rattled-seed{seed}-{i}-sigma{sigma:.3f}"
        out.append(atoms)
    return out


def md_frames(frames_per_run: int, seed0: int) -> list[Atoms]:
    """CHGNet-driven Langevin NVT at every (temperature, volume strain); seeds seed0, seed0 + 1, ..."""
    import mlpkit
    from mlpkit.sampling import md_snapshots

    calc = mlpkit.load("chgnet").calculator()
    out = []
    seed = seed0
    for temperature in TEMPERATURES:
        for strain in VOLUME_STRAINS:
            t0 = time.perf_counter()
            frames = md_snapshots(
                si8(strain),
                calc,
                temperature=temperature,
                steps=50 * (2 + frames_per_run),
                every=50,
                thermostat="langevin",
                timestep=2.0,
                friction=0.02,
                seed=seed,
            )[2:]
            for atoms in frames:
                atoms.info["source"] = (
                    f"md-chgnet-{temperature:.0f}K-strain{strain:+.2f}-seed{seed}-{atoms.info['step']}"
                )
                atoms.info.pop("step", None)
                atoms.arrays.pop("momenta", None)
                out.append(atoms)
            print(
                f"  md {temperature:.0f} K strain {strain:+.2f} seed {seed}: {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            seed += 1
    return out


def label_all(configs: list[Atoms], path: Path) -> None:
    """GPAW-label ``configs`` into ``path``, continuing after the frames already there."""
    from mlpkit.labelers import make_labeler

    labeler = make_labeler("gpaw", xc="PBE", ecut=ECUT, kpts=KPTS, occupations_width=WIDTH)
    done = read_images(path)
    for atoms in configs[: len(done)]:
        assert atoms.info["source"] in {d.info["source"] for d in done}, f"{path} was made by another recipe"
    for atoms in configs[len(done) :]:
        c0 = time.process_time()
        label = labeler.label(atoms)
        cpu = time.process_time() - c0
        out = atoms.copy()
        out.calc = SinglePointCalculator(out, energy=label.energy, forces=label.forces, stress=label.stress)
        out.info.update(
            {"method": labeler.method, "label_seconds": round(label.seconds, 2), "label_cpu_seconds": round(cpu, 2)}
        )
        done.append(out)
        atomic_write_images(path, done)
        print(
            f"  {path.name} {len(done)}/{len(configs)} {atoms.info['source']}: "
            f"E/atom {label.energy / len(atoms):.4f} eV, "
            f"{label.seconds:.1f} s wall, {cpu:.1f} s CPU",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["eos", "train", "test"], choices=["eos", "train", "test"])
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    for name in args.sets:
        path = DATA / f"si8-gpaw-pbe-{name}.extxyz"
        if name == "eos":
            configs = []
            for s in EOS_STRAINS:
                atoms = si8(float(s))
                atoms.info["source"] = f"eos-strain{s:+.3f}"
                configs.append(atoms)
        elif name == "train":
            configs = rattled(13, seed=1) + md_frames(3, seed0=100)
        else:
            configs = rattled(12, seed=2) + md_frames(2, seed0=200)
        print(f"{name}: {len(configs)} configurations", flush=True)
        label_all(configs, path)
        cpu = sum(a.info["label_cpu_seconds"] for a in read_images(path))
        print(f"{name}: done, {cpu / 60:.1f} CPU-minutes of GPAW in the file", flush=True)


if __name__ == "__main__":
    main()
