"""The water molecule each sampling driver holds, against the reference: O–H (Å) and H–O–H (degrees) at each
method's own minimum (BFGS to 1e-3 eV/Å), and the force each driver's minimum feels under the reference (eV/Å):
how far from the reference's geometry a driver's MD is centred; and the CPU time (user+sys of this process) of one
Langevin MD step at 500 K with each (the reference: 5 steps, the others 200).

    OMP_NUM_THREADS=1 python bench/active_learning_driver/water_minima.py
"""

from __future__ import annotations

import time

import numpy as np
from ase.build import molecule
from ase.optimize import BFGS


def geometry(a) -> tuple[float, float]:
    v = a.positions[1:] - a.positions[0]
    d = np.linalg.norm(v, axis=1)
    return float(d.mean()), float(np.degrees(np.arccos(v[0] @ v[1] / (d[0] * d[1]))))


def main() -> None:
    from mlpkit.labelers import make_labeler
    from mlpkit.sampling import md_snapshots
    from mlpkit.sampling.driver import make_driver

    reference = make_labeler({"method": "pyscf", "xc": "PBE", "basis": "def2-SVP"})
    drivers = {
        "PySCF PBE/def2-SVP (reference)": reference,
        "GFN2-xTB": make_driver("gfn2"),
        "CHGNet 0.3.0 (zero-shot)": make_driver("chgnet"),
        "CHGNet r2scan (zero-shot)": make_driver("chgnet:r2scan"),
    }
    print("| method | O–H (Å) | H–O–H (°) | max reference force at its minimum (eV/Å) | CPU ms per MD step |")
    print("|---|---|---|---|---|")
    for name, d in drivers.items():
        a = molecule("H2O", vacuum=5.0)
        a.calc = d.calculator()
        BFGS(a, logfile=None).run(fmax=1e-3, steps=200)
        oh, ang = geometry(a)
        b = a.copy()
        b.calc = reference.calculator()
        fmax = float(np.abs(b.get_forces()).max())
        steps = 5 if d is reference else 200
        calc = d.calculator()
        t0 = time.process_time()
        md_snapshots(a, calc, temperature=500, steps=steps, every=steps, thermostat="langevin", seed=0)
        ms = (time.process_time() - t0) / steps * 1000
        print(f"| {name} | {oh:.4f} | {ang:.1f} | {fmax:.3f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
