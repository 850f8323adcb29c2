"""Where a water potential's force error lives: the whole-molecule (centre-of-mass) force, the torque and the
intramolecular rest, each against the reference's RMS of the same part.

A force MAE of a few % of the RMS force component says little about a liquid's structure: the RMS is dominated by
the stiff O-H stretch and H-O-H bend, while the O-O shell is shaped by the net force and torque each molecule feels
from its neighbours, which are ~5x smaller. This splits every labelled frame's forces per molecule (each H bonded to
its nearest O, minimum image) into

- **net force** F_mol = Σ_a F_a (eV/Å, 3 components per molecule): moves the molecule as a whole;
- **torque** τ = Σ_a (r_a − r_com) × F_a (eV, 3 components per molecule): turns it (hydrogen-bond orientation);
- **intramolecular rest** F_a − m_a F_mol / M (eV/Å): stretches and bends it,

and prints MAE and RMS of each for reference and potential, and the slope of the potential's part against the
reference's (least squares through the origin: below 1, that part is systematically too weak); and the mean and
spread of the energy error per atom. Compared between two sets of frames (the reference method's own liquid and the
potential's), the difference of the mean energy errors is the bias that tilts MD toward one set: a potential that
puts the reference's liquid higher than its own, relative to the reference method, samples its own.

    python bench/liquid_force_components.py MODEL FRAMES.extxyz [FRAMES2.extxyz ...]

MODEL: a saved potential directory (e.g. ``RUN/models/final``); FRAMES: labelled frames (energy and forces), e.g.
the equilibrated reference frames ``bench/liquid_rdf_vs_reference.py --test-frames 60`` keeps beside its trajectory,
or a run's ``configs/test-labelled.extxyz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def molecules(atoms) -> np.ndarray:
    """(n_molecules, 3) atom indices O, H, H of a water box: every H goes to its nearest O (minimum image).

    Raises ValueError when an O does not get exactly two H (a dissociated or foreign molecule)."""
    numbers = atoms.numbers
    oxygens = np.flatnonzero(numbers == 8)
    hydrogens = np.flatnonzero(numbers == 1)
    dist = atoms.get_all_distances(mic=True)[np.ix_(hydrogens, oxygens)]
    owner = oxygens[np.argmin(dist, axis=1)]
    out = []
    for o in oxygens:
        hs = hydrogens[owner == o]
        if hs.size != 2:
            raise ValueError(f"oxygen {o} has {hs.size} hydrogens within its nearest-O set; not intact water")
        out.append((o, hs[0], hs[1]))
    return np.asarray(out)


def whole_molecules(atoms, mols: np.ndarray) -> np.ndarray:
    """(M, 3, 3) Å: each molecule's atoms (rows of ``mols``) unwrapped around its O by the minimum image, so the
    molecule is whole (its centre of mass and dipole are inside it)."""
    pos = atoms.positions[mols]
    cell = atoms.cell.array
    d = pos - pos[:, :1]
    d -= np.round(d @ np.linalg.inv(cell)) @ cell
    return pos[:, :1] + d


def components(atoms, forces: np.ndarray, mols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(net force (M, 3) eV/Å, torque (M, 3) eV, intramolecular rest (3M, 3) eV/Å) of ``forces`` (N, 3)."""
    masses = atoms.get_masses()[mols]  # (M, 3)
    pos = whole_molecules(atoms, mols)
    com = (masses[..., None] * pos).sum(1) / masses.sum(1)[:, None]
    f = forces[mols]  # (M, 3, 3)
    net = f.sum(1)
    torque = np.cross(pos - com[:, None], f).sum(1)
    rest = f - masses[..., None] / masses.sum(1)[:, None, None] * net[:, None]
    return net, torque, rest.reshape(-1, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a saved potential directory")
    ap.add_argument("frames", type=Path, nargs="+", help="labelled frames (extxyz with forces)")
    args = ap.parse_args()
    from mlpkit.files import read_images
    from mlpkit.potentials.registry import load_potential

    calc = load_potential(args.model).calculator()
    print("| frames | part | n | RMS reference | MAE | MAE / RMS | slope |")
    print("|---|---|---|---|---|---|---|")
    for path in args.frames:
        frames = read_images(path)
        parts: dict[str, tuple[list, list]] = {k: ([], []) for k in ("all atoms", "net force", "torque", "rest")}
        energy_error = []
        for frame in frames:
            mols = molecules(frame)
            ref = frame.get_forces()
            probe = frame.copy()
            probe.calc = calc
            pred = probe.get_forces()
            energy_error.append((probe.get_potential_energy() - frame.get_potential_energy()) / len(frame))
            parts["all atoms"][0].append(ref.ravel())
            parts["all atoms"][1].append(pred.ravel())
            for name, r, p in zip(("net force", "torque", "rest"), components(frame, ref, mols),
                                  components(frame, pred, mols), strict=True):  # fmt: skip
                parts[name][0].append(r.ravel())
                parts[name][1].append(p.ravel())
        for name, (r, p) in parts.items():
            r, p = np.concatenate(r), np.concatenate(p)
            rms, mae = float(np.sqrt(np.mean(r**2))), float(np.mean(np.abs(p - r)))
            slope = float(np.dot(p, r) / np.dot(r, r))  # < 1: the potential's forces of this kind are too weak
            unit = "meV" if name == "torque" else "meV/Å"
            print(f"| {path.name} ({len(frames)}) | {name} | {r.size} | {1000 * rms:.1f} {unit} | "
                  f"{1000 * mae:.1f} {unit} | {100 * mae / rms:.1f} % | {slope:.3f} |")  # fmt: skip
        de = 1000 * np.asarray(energy_error)
        print(f"| {path.name} ({len(frames)}) | energy − reference, meV/atom | {de.size} | mean {de.mean():+.2f} | "
              f"std {de.std():.2f} | | |")  # fmt: skip


if __name__ == "__main__":
    main()
