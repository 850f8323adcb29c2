"""Sanity check of the source-protocol numbers: a symmetric polynomial in the three internal coordinates of the
water molecule (r_OH1 + r_OH2, (r_OH1 - r_OH2)², r_HH), fitted by least squares on energies and forces of frames
0-49 of ../shared/data/h2o-pbe-svp-500K-nve.extxyz, tested on 100-299. Shows how low a linear model's force error can
go on this protocol (one molecule, a narrow NVE range): the floor is the noise of the labels.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/mtp_polynomial_check.py
"""

import itertools
from pathlib import Path

import numpy as np
import torch
from ase.io import read

torch.set_default_dtype(torch.float64)
fr = read(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "h2o-pbe-svp-500K-nve.extxyz", ":")


def feats(pos, deg):
    r1 = (pos[:, 1] - pos[:, 0]).norm(dim=1) - 0.97
    r2 = (pos[:, 2] - pos[:, 0]).norm(dim=1) - 0.97
    r3 = (pos[:, 2] - pos[:, 1]).norm(dim=1) - 1.5
    s = r1 + r2
    d = (r1 - r2) ** 2
    cols = []
    for a, b, c in itertools.product(range(deg + 1), repeat=3):
        if 1 <= a + 2 * b + c <= deg:
            cols.append(s**a * d**b * r3**c)
    return torch.stack(cols, 1)


def design(frames, deg):
    pos = torch.tensor(np.array([a.positions for a in frames])).requires_grad_(True)
    F = feats(pos, deg)
    n = F.shape[1]
    J = torch.stack(
        [torch.autograd.grad(F[:, k].sum(), pos, retain_graph=True)[0] for k in range(n)], -1
    )  # (n_f,3,3,n)
    return F.detach(), -J.reshape(len(frames), 9, n)


tr, te = fr[:50], fr[100:300]
for deg in (3, 4, 5, 6):
    F, J = design(tr, deg)
    E = np.array([a.get_potential_energy() for a in tr])
    Fo = np.array([a.get_forces() for a in tr]).reshape(50, 9)
    A = np.vstack(
        [
            np.hstack([F.numpy(), np.ones((50, 1))]),
            np.hstack([J.reshape(-1, J.shape[-1]).numpy(), np.zeros((450, 1))]) * 1.0,
        ]
    )
    y = np.concatenate([E, Fo.ravel()])
    c = np.linalg.lstsq(A, y, rcond=None)[0]
    F2, J2 = design(te, deg)
    fp = J2.numpy() @ c[:-1]
    ft = np.array([a.get_forces() for a in te]).reshape(200, 9)
    print(f"degree {deg}: {F.shape[1]} terms, test force MAE {np.abs(fp - ft).mean() * 1000:.3f} meV/Å")
