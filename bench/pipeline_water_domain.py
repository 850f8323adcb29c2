"""Issue 12's bar for the main job: score finished `mlpkit run examples/water/mlpkit.yaml` run directories on
independent equilibrated Langevin runs at 300 K and 1000 K (bench/data/, PySCF PBE/def2-SVP, never seen by the
project) and print one table row per run: labels, wall time, checklist, frequencies, force MAE at 300/1000 K, the
physics rounds, AL vs random.

    OMP_NUM_THREADS=1 python bench/pipeline_water_domain.py RUN_DIR [RUN_DIR ...]

RUN_DIR is the project's run directory (``examples/water/run`` after ``make water``). Bar: checklist all PASS,
frequencies within 10 cm⁻¹ of PBE/def2-SVP, force MAE ≤ 30 meV/Å at 300 K and ≤ 60 meV/Å at 1000 K, ≤ 100 DFT labels
(test set excluded), whole run ≤ 25 min.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.io import read

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
SETS = {300: DATA / "h2o-pbe-svp-300K-langevin.extxyz", 1000: DATA / "h2o-pbe-svp-1000K-langevin.extxyz"}
BAR = {"mae_300": 0.030, "mae_1000": 0.060, "labels": 100, "minutes": 25.0, "freq": 10.0}


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def score(run_dir: Path, model: str = "models/final") -> dict:
    """The bar's numbers for one finished run directory (``model``: the model directory scored, relative to it)."""
    from mlpkit.data import Dataset
    from mlpkit.potentials import load_potential
    from mlpkit.validation.metrics import evaluate

    state = _load(run_dir / "pipeline-state.json") or {}
    steps = state.get("steps", {})
    learn = steps.get("learn", {}).get("result", {})
    ds = Dataset(str(run_dir / "dataset.db"))
    method = learn.get("method") or ds.methods()[0]
    labels = sum(ds.count(status="labelled", method=method, split=s) for s in ("train", "valid"))
    row: dict = {
        "run": str(run_dir),
        "seed": None,
        "labels": labels,
        "test_labels": ds.count(status="labelled", method=method, split="test"),
        "minutes": sum(float(v.get("seconds", 0.0)) for v in steps.values()) / 60,
        "stages_done": len(steps),
    }
    cfg = _load(run_dir / "config.json") or {}
    row["seed"] = cfg.get("seed")
    val = _load(run_dir / "validation" / "final" / "validation.json") or {}
    checks = {c["key"]: c for c in val.get("checks", [])}
    row["checklist"] = val.get("counts", {})
    row["not_pass"] = [f"{k} {c['status']}" for k, c in checks.items() if c["status"] not in ("PASS", "SKIP")]
    vib = (checks.get("vibrations") or {}).get("details") or {}
    row["freq_dev"] = vib.get("max_deviation")
    row["freq_model"] = ((vib.get("model") or {}).get("frequencies")) or []
    row["nve"] = "/".join(checks[k]["status"] for k in ("nve_stability", "nve_energy") if k in checks)
    pot = load_potential(run_dir / model)
    for temp, path in SETS.items():
        frames = read(path, index=":")
        metrics, table = evaluate(pot, frames)
        row[f"mae_{temp}"] = metrics["forces_mae"]
        row[f"max_{temp}"] = metrics["forces_max_error"]
        row[f"emae_{temp}"] = metrics["energy_mae_per_atom"]
        row[f"largest_force_{temp}"] = float(np.abs(table.forces_pred).max())
    row["physics"] = [
        f"it{r['iteration']} {r['check']} +{r['labels']}" for r in learn.get("physics_rounds", []) if r["labels"]
    ]
    row["own_test"] = {
        f"{r['temperature']:g}K": round(1000 * r["forces_mae"], 1) for r in learn.get("per_temperature", [])
    }
    base = learn.get("baseline") or {}
    row["al_vs_random"] = base.get("verdict", "–")
    row["chosen_iteration"] = (learn.get("model_choice") or {}).get("chosen_iteration")
    row["met"] = bool(
        not row["not_pass"]
        and row["freq_dev"] is not None
        and row["freq_dev"] <= BAR["freq"]
        and row["mae_300"] <= BAR["mae_300"]
        and row["mae_1000"] <= BAR["mae_1000"]
        and labels <= BAR["labels"]
        and row["minutes"] <= BAR["minutes"]
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument(
        "--model", default="models/final", help="model directory inside each run directory (e.g. iter-003/model)"
    )
    args = ap.parse_args()
    rows = [score(d, args.model) for d in args.run_dirs]
    head = (
        "| run | seed | DFT labels (test) | stage time (min) | checklist P/W/F | not PASS | max Δν (cm⁻¹) | NVE | "
        "F MAE 300 K | F MAE 1000 K | max F err 1000 K | E MAE 300/1000 K (meV/atom) | own test per T | "
        "physics labels | model | AL vs random | bar |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        c = r["checklist"]
        freq = "–" if r["freq_dev"] is None else f"{r['freq_dev']:.1f}"
        print(
            f"| {r['run']} | {r['seed']} | {r['labels']} ({r['test_labels']}) | {r['minutes']:.1f} | "
            f"{c.get('PASS', 0)}/{c.get('WARN', 0)}/{c.get('FAIL', 0)} | {', '.join(r['not_pass']) or '–'} | "
            f"{freq} | {r['nve']} | "
            f"{1000 * r['mae_300']:.1f} | {1000 * r['mae_1000']:.1f} | {1000 * r['max_1000']:.0f} | "
            f"{1000 * r['emae_300']:.2f} / {1000 * r['emae_1000']:.2f} | "
            f"{', '.join(f'{k} {v}' for k, v in r['own_test'].items())} | {'; '.join(r['physics']) or '–'} | "
            f"iter {r['chosen_iteration']} | {r['al_vs_random']} | {'MET' if r['met'] else 'not met'} |"
        )
    print(
        f"\nbar: checklist all PASS, max Δν ≤ {BAR['freq']:g} cm⁻¹, F MAE ≤ {BAR['mae_300'] * 1000:g} meV/Å at 300 K "
        f"and ≤ {BAR['mae_1000'] * 1000:g} at 1000 K ({', '.join(p.name for p in SETS.values())}), ≤ {BAR['labels']} "
        f"DFT labels (test set excluded), stage time ≤ {BAR['minutes']:g} min"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
