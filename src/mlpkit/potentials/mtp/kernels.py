"""Compiled (numba) pair loops of the moment-tensor prediction: moments forward, dE/dr backward.

The torch path (:meth:`MomentTensorBasis.pair_features`, :meth:`~MomentTensorBasis.pair_gradient`) builds
(pairs × radial × monomial) arrays several times per step, the largest arrays of an MD step. Here each pair is
visited once forward (accumulating ``M[i, s, k, m] += R_k(r) mono_m(u)``) and once backward (contracting
``dE/dM`` with the same values and their derivatives), everything for that pair in registers. Same functions as
the torch code (checked to 1e-12 in tests/test_mtp.py). Single-threaded, compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlpkit.descriptors import kernel_cache

kernel_cache.install()  # before any cache=True kernel: one cache stamp over all kernel sources


@njit(cache=True)
def _radial(r, rc, r_min, n_radial, out, dout):
    """R_k(r) and dR_k/dr into out, dout (n_radial,)."""
    if r >= rc:
        for k in range(n_radial):
            out[k] = 0.0
            dout[k] = 0.0
        return
    d = rc - r
    env = d * d / (rc * rc)
    denv = -2.0 * d / (rc * rc)
    xi = (2.0 * r - (r_min + rc)) / (rc - r_min)
    dxi = 2.0 / (rc - r_min)
    t0, t1, dt0, dt1 = 1.0, xi, 0.0, 1.0
    for k in range(n_radial):
        if k == 0:
            t, dt = t0, dt0
        elif k == 1:
            t, dt = t1, dt1
        else:
            t = 2.0 * xi * t1 - t0
            dt = 2.0 * t1 + 2.0 * xi * dt1 - dt0
            t0, t1, dt0, dt1 = t1, t, dt1, dt
        out[k] = t * env
        dout[k] = dt * dxi * env + t * denv


@njit(cache=True)
def _monomials(u, mono_exp, max_rank, powers, mono):
    for a in range(3):
        powers[0, a] = 1.0
        for p in range(1, max_rank + 1):
            powers[p, a] = powers[p - 1, a] * u[a]
    for m in range(mono_exp.shape[0]):
        mono[m] = powers[mono_exp[m, 0], 0] * powers[mono_exp[m, 1], 1] * powers[mono_exp[m, 2], 2]


@njit(cache=True)
def moments(vectors, centers, neighbor_species, n_atoms, n_species, n_radial, rc, r_min, mono_exp, max_rank):
    """M (n_atoms, n_species * n_radial, n_mono): Σ over pairs of R_k(r) mono_m(u), channel = s * n_radial + k."""
    n_mono = mono_exp.shape[0]
    out = np.zeros((n_atoms, n_species * n_radial, n_mono))
    rad = np.empty(n_radial)
    drad = np.empty(n_radial)
    powers = np.empty((max_rank + 1, 3))
    mono = np.empty(n_mono)
    u = np.empty(3)
    for p in range(vectors.shape[0]):
        r = np.sqrt(vectors[p, 0] ** 2 + vectors[p, 1] ** 2 + vectors[p, 2] ** 2)
        if r >= rc:
            continue
        for a in range(3):
            u[a] = vectors[p, a] / r
        _radial(r, rc, r_min, n_radial, rad, drad)
        _monomials(u, mono_exp, max_rank, powers, mono)
        i, base = centers[p], neighbor_species[p] * n_radial
        for k in range(n_radial):
            for m in range(n_mono):
                out[i, base + k, m] += rad[k] * mono[m]
    return out


@njit(cache=True)
def pair_gradient(grad_m, vectors, centers, neighbor_species, n_radial, rc, r_min, mono_exp, max_rank, lower, nu):
    """dE/dr_p (P, 3) from dE/dM (n_atoms, channels, n_mono) (see MomentTensorBasis.pair_gradient)."""
    n_mono = mono_exp.shape[0]
    out = np.zeros((vectors.shape[0], 3))
    rad = np.empty(n_radial)
    drad = np.empty(n_radial)
    powers = np.empty((max_rank + 1, 3))
    mono = np.empty(n_mono + 1)
    u = np.empty(3)
    for p in range(vectors.shape[0]):
        r = np.sqrt(vectors[p, 0] ** 2 + vectors[p, 1] ** 2 + vectors[p, 2] ** 2)
        if r >= rc:
            continue
        for a in range(3):
            u[a] = vectors[p, a] / r
        _radial(r, rc, r_min, n_radial, rad, drad)
        _monomials(u, mono_exp, max_rank, powers, mono)
        mono[n_mono] = 0.0
        i, base = centers[p], neighbor_species[p] * n_radial
        radial_part = 0.0
        gx, gy, gz = 0.0, 0.0, 0.0
        for m in range(n_mono):
            a_m = 0.0
            b_m = 0.0
            for k in range(n_radial):
                h = grad_m[i, base + k, m]
                a_m += h * rad[k]
                b_m += h * drad[k]
            radial_part += (b_m - a_m * nu[m] / r) * mono[m]
            gx += a_m * mono_exp[m, 0] * mono[lower[0, m]]
            gy += a_m * mono_exp[m, 1] * mono[lower[1, m]]
            gz += a_m * mono_exp[m, 2] * mono[lower[2, m]]
        out[p, 0] = radial_part * u[0] + gx / r
        out[p, 1] = radial_part * u[1] + gy / r
        out[p, 2] = radial_part * u[2] + gz / r
    return out
