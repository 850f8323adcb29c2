"""CPU cost of active learning on the MTP extrapolation grade vs on a BPNN committee, same protocol, same machine.

    python bench/active_learning_cpu_cost/run.py mtp 0 runs/cpu-mtp-s0      # one loop; writes RUN/cpu.json
    python bench/active_learning_cpu_cost/run.py bpnn 0 runs/cpu-bpnn-s0
    python bench/active_learning_cpu_cost/run.py --table runs/cpu-*          # the table in docs/benchmarks/mtp.md

The loop is the committed water example (examples/learn-water.yaml: PySCF PBE/def2-SVP labels, 20 farthest-point
initial frames of a 200-frame GFN2-xTB pool, 500 K exploration, stop at two calm explorations and test force MAE
≤ 50 meV/Å) with three changes so that the two families are timed on exactly the same work:
  * `baseline.enabled: false` — the random-sampling baseline is not part of the loop a user pays for;
  * `execution.workers: 0` — labels are computed in the timed process (no Dask workers whose CPU would escape
    ``RUSAGE_CHILDREN``), one thread;
  * `test.file` — the 200 independent frames of bench/data/h2o-pbe-svp-{300K,1000K}-langevin.extxyz, labelled once
    beforehand, so neither loop pays for test labels.
`mtp` replaces the committee by `{family: mtp, n_members: 1}` (the loop runs on the calibrated grade γ); `bpnn` keeps
the example's 4-member committee. CPU time is user + system of the `mlpkit learn` process tree (``getrusage`` of
children), which a busy machine inflates less than wall time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEST_FILES = ["h2o-pbe-svp-300K-langevin.extxyz", "h2o-pbe-svp-1000K-langevin.extxyz"]


def make_config(family: str, seed: int, run_dir: Path) -> Path:
    """Write the timed variant of examples/learn-water.yaml into ``run_dir`` and return its path."""
    cfg = yaml.safe_load((ROOT / "examples" / "learn-water.yaml").read_text())
    cfg["name"] = f"water-cpu-{family}-s{seed}"
    cfg["seed"] = seed
    cfg["baseline"] = {"enabled": False}
    cfg.setdefault("execution", {})["workers"] = 0
    cfg["execution"]["threads"] = 1
    test = run_dir / "independent-test.extxyz"
    test.write_text("".join((ROOT / "bench" / "data" / f).read_text() for f in TEST_FILES))
    cfg["test"] = {"file": str(test.resolve())}
    if family == "mtp":
        cfg["committee"] = {"family": "mtp", "n_members": 1}
    elif family != "bpnn":
        raise SystemExit(f"family must be mtp or bpnn, not {family!r}")
    path = run_dir / "timed.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(family: str, seed: int, run_dir: Path) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    config = make_config(family, seed, run_dir)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    subprocess.run(
        [sys.executable, "-m", "mlpkit", "learn", str(config), "--run-dir", str(run_dir / "run")], check=True, env=env
    )
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads((run_dir / "run" / "report" / "summary.json").read_text())
    out = {
        "family": family,
        "seed": seed,
        "cpu_seconds": ru.ru_utime + ru.ru_stime,
        "wall_seconds": wall,
        "load_average_start": load0,
        "load_average_end": os.getloadavg()[0],
        "n_labels": summary["n_labels"],
        "iterations": summary["iterations"] + 1,
        "final_forces_mae": summary["final_metrics"]["forces_mae"],
        "forces_mae_by_temperature": summary["final_metrics"].get("forces_mae_by_temperature"),
        "label_seconds": summary["label_seconds"],
        "stopped_because": summary["stopped_because"],
    }
    (run_dir / "cpu.json").write_text(json.dumps(out, indent=1))
    return out


def table(run_dirs: list[str]) -> None:
    print("| family | seed | labels | test force MAE (meV/Å) | CPU min | wall min | load avg start/end |")
    print("|---|---|---|---|---|---|---|")
    rows = [json.loads((Path(d) / "cpu.json").read_text()) for d in run_dirs if (Path(d) / "cpu.json").exists()]
    for r in sorted(rows, key=lambda r: (r["family"], r["seed"])):
        print(
            f"| {r['family']} | {r['seed']} | {r['n_labels']} | {1000 * r['final_forces_mae']:.1f} | "
            f"{r['cpu_seconds'] / 60:.1f} | {r['wall_seconds'] / 60:.1f} | "
            f"{r['load_average_start']:.1f} / {r['load_average_end']:.1f} |"
        )


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2:])
    else:
        print(json.dumps(run(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])), indent=1))
