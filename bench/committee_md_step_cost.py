"""CPU per MD step of a BPNN committee with its uncertainty (energy, forces, per-atom force spread, max_force_std: what
production MD with the watchdog evaluates every step), against the atoms of water boxes: the per-atom cost stays
flat if the per-atom uncertainty is vectorised, and the committee's members multiply a single model's cost.

    OMP_NUM_THREADS=1 python bench/committee_md_step_cost.py --members 1 3 --boxes 16 128 1000 --steps 10

The potentials are untrained (weights from init_seed; the cost does not depend on the weights) with the liquid-water
example's hyperparameters (cutoff 4.5 Å, 24x24, 8 radial / 4 angular functions); each step displaces every atom by
0.01 Å (Gaussian), so the neighbour list is updated as in MD. Prints a table; CPU time (user + sys) of this process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mlpkit.data.boxes import box_from_spec
from mlpkit.potentials.bpnn.potential import BPNNPotential
from mlpkit.uncertainty.committee import Committee


def step_cost(n_members: int, n_molecules: int, steps: int) -> tuple[int, float]:
    """(atoms, CPU seconds per step) of a committee of ``n_members`` (one potential alone for 1) on water-box:N."""
    template = box_from_spec("water-box:16", seed=0)
    members = [
        BPNNPotential.from_data([template], cutoff=4.5, hidden=[24, 24], n_radial=8, n_angular=4, init_seed=k)
        for k in range(n_members)
    ]
    pot = members[0] if n_members == 1 else Committee(members)
    atoms = box_from_spec(f"water-box:{n_molecules}", seed=0)
    atoms.calc = pot.calculator()
    rng = np.random.default_rng(0)
    atoms.get_forces()  # warm-up: compiled kernels, first neighbour list
    t0 = time.process_time()
    for _ in range(steps):
        atoms.positions += rng.normal(0.0, 0.01, atoms.positions.shape)
        atoms.get_forces()
        if n_members > 1:
            assert atoms.calc.results["forces_std"].shape == (len(atoms), 3)
    return len(atoms), (time.process_time() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--boxes", type=int, nargs="+", default=[16, 128, 1000], help="water molecules per box")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    print("| members | atoms | CPU per step (ms) | CPU µs/atom/step |")
    print("|---|---|---|---|")
    for m in args.members:
        for n in args.boxes:
            atoms, cpu = step_cost(m, n, args.steps)
            print(f"| {m} | {atoms:,} | {1e3 * cpu:.1f} | {1e6 * cpu / atoms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
