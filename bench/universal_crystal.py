"""The crystal case of the universal-potential benchmark: silicon labelled with GPAW plane-wave PBE.

Reads the data made by bench/si_gpaw_data.py (bench/data/si8-gpaw-pbe-{train,test,eos}.extxyz: 40 training frames,
30 test frames from separate runs and seeds, and the DFT E-V points of the perfect crystal) and prints two tables:

1. Test-set errors: energy MAE (meV/atom), force MAE (meV/Å per Cartesian component), stress MAE (GPa per Voigt
   component) and fit time, for CHGNet 0.3.0 zero-shot (raw and reference-aligned on the training labels), CHGNet
   fine-tuned on the training set (what ``mlpkit finetune chgnet --data bench/data/si8-gpaw-pbe-train.extxyz`` does:
   the family defaults) and mlpkit's families trained from scratch on the same frames with their defaults.
2. The equation of state of the perfect crystal from 7 volumes (V0 -6 ... +6 %), Birch-Murnaghan (ase.eos): V0 (Å³
   per atom), the lattice constant a0 (Å), E0 (eV/atom, relative to DFT's E0 for the aligned models) and the bulk
   modulus B (GPa), for DFT (GPAW) and every model; plus DFT's pressure from the EOS fit against GPAW's analytic
   stress (the Pulay stress of a fixed plane-wave cut-off).

Models are saved under ``--models`` and reused on a second run (delete the folder to refit).

    OMP_NUM_THREADS=1 python bench/universal_crystal.py --models /tmp/si-models --json docs/benchmarks/universal-si.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.eos import EquationOfState

import mlpkit
from mlpkit.files import read_images
from mlpkit.potentials import create_potential, load_potential
from mlpkit.validation.metrics import evaluate

DATA = Path(__file__).resolve().parent / "data"
GPA = 1.0 / units.GPa  # GPa per eV/Å³ (160.2)
FAMILIES = ("mtp", "snap", "gap", "bpnn")


def stress_mae_gpa(pot, images) -> float:
    """Mean absolute error of the six Voigt stress components (GPa) against the reference stress."""
    pred = pot.predict(images, stress=True).stress
    ref = np.array([a.get_stress(voigt=True) for a in images])
    return float(np.abs(pred - ref).mean() * GPA)


def fitted(name: str, models: Path, make, train) -> tuple[object, float | None, float | None]:
    """(potential, fit wall s, fit CPU s): loaded from ``models/name`` when saved there before, else fitted."""
    path = models / name
    if (path / "model.json").exists():
        meta = json.loads((path / "fit_time.json").read_text()) if (path / "fit_time.json").exists() else {}
        return load_potential(path), meta.get("wall"), meta.get("cpu")
    pot, fit = make()
    w, c = time.perf_counter(), time.process_time()
    fit(pot, train)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    pot.save(path)
    (path / "fit_time.json").write_text(json.dumps({"wall": wall, "cpu": cpu}))
    return pot, wall, cpu


def eos_fit(volumes: np.ndarray, energies: np.ndarray) -> dict:
    """Birch-Murnaghan fit of E(V) for the 8-atom cell: V0 per atom, a0, E0 per atom, B in GPa."""
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, b = eos.fit()
    return {"V0": v0 / 8, "a0": v0 ** (1 / 3), "E0": e0 / 8, "B": b * GPA, "_eos": eos}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="/tmp/si-models", help="where fitted models are saved and reused")
    ap.add_argument("--families", nargs="*", default=list(FAMILIES))
    ap.add_argument("--json", help="write every number here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--fit", nargs="*", default=[], help="CHGNet fine-tune settings key=value (default: the family defaults)"
    )
    ap.add_argument(
        "--fit-only",
        nargs="+",
        help="fit and save only these models (chgnet-aligned, chgnet-finetuned, or family names), then stop: "
        "run several at once in separate processes, then once more without it for the tables",
    )
    args = ap.parse_args()
    fit_settings = {k: _value(v) for k, v in (kv.split("=", 1) for kv in args.fit)}
    torch.set_num_threads(args.threads)
    models = Path(args.models)
    train = read_images(DATA / "si8-gpaw-pbe-train.extxyz")
    test = read_images(DATA / "si8-gpaw-pbe-test.extxyz")
    eos_frames = read_images(DATA / "si8-gpaw-pbe-eos.extxyz")
    print(
        f"train {len(train)} frames, test {len(test)} frames, EOS {len(eos_frames)} volumes ({train[0].info['method']})"
    )
    label_cpu = sum(a.info.get("label_cpu_seconds", 0.0) for a in train + test + eos_frames)
    print(f"GPAW labels: {label_cpu / 60:.1f} CPU-minutes in all")

    makers = {
        "chgnet-aligned": ("CHGNet zero-shot, aligned", "chgnet", {"epochs": 0}),
        "chgnet-finetuned": ("CHGNet fine-tuned", "chgnet", fit_settings),
        **{f: (f"{f} from scratch", f, {}) for f in args.families},
    }
    if args.fit_only:
        for key in args.fit_only:
            _, family, settings = makers[key]
            _, wall, cpu = fitted(key, models, _maker(family, train, settings), train)
            print(f"{key}: fitted in {wall or 0:.0f} s wall, {cpu or 0:.0f} s CPU")
        return
    candidates: dict[str, tuple] = {"CHGNet 0.3.0 zero-shot, raw": (mlpkit.load("chgnet"), None, None)}
    for key, (label, family, settings) in makers.items():
        candidates[label] = fitted(key, models, _maker(family, train, settings), train)

    rows = []
    print(f"\n{'model':<30} {'E meV/atom':>10} {'F meV/Å':>9} {'S GPa':>7} {'fit wall s':>10} {'fit CPU s':>9}")
    for name, (pot, wall, cpu) in candidates.items():
        m, _ = evaluate(pot, test)
        row = {
            "model": name,
            "n_train": None if "raw" in name else len(train),
            "energy_mae_mev_atom": 1e3 * m["energy_mae_per_atom"],
            "forces_mae_mev_a": 1e3 * m["forces_mae"],
            "stress_mae_gpa": stress_mae_gpa(pot, test),
            "fit_wall_s": wall,
            "fit_cpu_s": cpu,
            "fine_tune": getattr(pot, "fine_tune", None),
        }
        rows.append(row)
        print(
            f"{name:<30} {row['energy_mae_mev_atom']:>10.2f} {row['forces_mae_mev_a']:>9.1f} "
            f"{row['stress_mae_gpa']:>7.3f} {wall or 0:>10.0f} {cpu or 0:>9.0f}",
            flush=True,
        )

    volumes = np.array([a.get_volume() for a in eos_frames])
    dft_e = np.array([a.get_potential_energy() for a in eos_frames])
    dft = eos_fit(volumes, dft_e)
    eos_rows = [{"model": "DFT (GPAW PBE PW350 k3x3x3)", **{k: v for k, v in dft.items() if k != "_eos"}}]
    for name, (pot, _, _) in candidates.items():
        fit = eos_fit(volumes, pot.predict(eos_frames).energy)
        eos_rows.append({"model": name, **{k: v for k, v in fit.items() if k != "_eos"}})
    print(f"\n{'EOS (Birch-Murnaghan)':<30} {'V0 Å³/at':>9} {'a0 Å':>7} {'E0-E0(DFT)':>11} {'B GPa':>7}")
    for r in eos_rows:
        print(
            f"{r['model']:<30} {r['V0']:>9.3f} {r['a0']:>7.4f} {1e3 * (r['E0'] - dft['E0']):>8.1f} meV {r['B']:>7.1f}"
        )
    print("literature: PBE a0 5.47 Å (V0 20.46 Å³/atom), B 88-89 GPa; experiment a0 5.431 Å, B 98-99 GPa")

    # GPAW's analytic stress is at a fixed plane-wave cut-off; -dE/dV of the EOS fit includes the basis change
    # (Pulay): their difference is the Pulay stress of the data's set-up.
    pulay = []
    for a, v in zip(eos_frames, volumes, strict=True):
        p_eos = -_pressure(dft["_eos"], v)
        p_gpaw = -float(np.mean(a.get_stress(voigt=True)[:3]))
        pulay.append((v / 8, p_eos * GPA, p_gpaw * GPA))
    print("\nDFT pressure (GPa): V/atom, -dE/dV of the EOS fit, -trace(stress)/3 from GPAW, difference")
    for v, pe, pg in pulay:
        print(f"  {v:7.3f} {pe:8.2f} {pg:8.2f} {pg - pe:+6.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "n_train": len(train),
                    "n_test": len(test),
                    "label_cpu_minutes": label_cpu / 60,
                    "rows": rows,
                    "eos": eos_rows,
                    "dft_pressure_gpa": [{"V_atom": v, "eos": pe, "gpaw_stress": pg} for v, pe, pg in pulay],
                },
                indent=1,
            )
        )


def _maker(family: str, train, settings: dict):
    """A function returning (new potential of ``family`` for ``train``, a function fitting it with ``settings``)."""
    return lambda: (create_potential(family, train), lambda p, t: p.fit(t, progress=False, **settings))


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _pressure(eos: EquationOfState, v: float, h: float = 1e-3) -> float:
    """dE/dV (eV/Å³) of the fitted EOS at ``v`` by central differences of the fitted curve."""
    return float((eos.func(v + h, *eos.eos_parameters) - eos.func(v - h, *eos.eos_parameters)) / (2 * h))


if __name__ == "__main__":
    main()
