"""Tabulated radial bases and the flat parameters of the compiled symmetry-function kernels.

The radial basis ``R_k(r) = exp(-η (r - μ_k)²) f_c(r)`` is a fixed function of ``r``; it is tabulated once per
model with its exact derivative at knots ``r_m = m h`` and evaluated by cubic Hermite interpolation in
:mod:`mlpkit.descriptors.kernels`; ``h`` is halved until the interpolant is within :data:`TABLE_TOLERANCE` of the
analytic basis. :class:`KernelParameters` holds a descriptor in the flat form the kernels read, and
:class:`Workspace` the scratch arrays they write.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

#: largest allowed |Hermite interpolant - analytic basis|, relative to the largest basis value (values and
#: r-derivatives × h), checked when a table is built
TABLE_TOLERANCE = 1e-9


def analytic_basis(
    r: np.ndarray, centres: np.ndarray, eta: float, rc: float, cosine: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Exact radial basis ``exp(max(-η (r - μ_k)², -30)) f_c(r)`` (len(r), K) and its r-derivative.

    The same functions as ``SymmetryFunctions._gauss`` × ``_fc`` (including the exp(-30) floor, whose
    derivative is zero), in numpy float64; zero at and beyond ``rc``.
    """
    r = np.asarray(r, dtype=np.float64)[:, None]
    d = r - centres[None, :]
    x = -eta * d * d
    g = np.exp(np.maximum(x, -30.0))
    dg = np.where(x >= -30.0, -2.0 * eta * d * g, 0.0)
    xc = np.minimum(r / rc, 1.0)
    if cosine:
        fc = 0.5 * (np.cos(math.pi * xc) + 1.0)
        dfc = (-0.5 * math.pi / rc) * np.sin(math.pi * xc)
    else:
        fc = 1.0 + xc**3 * (-10.0 + xc * (15.0 - 6.0 * xc))
        dfc = xc**2 * (-30.0 + xc * (60.0 - 30.0 * xc)) / rc
    inside = r < rc
    return np.where(inside, g * fc, 0.0), np.where(inside, dg * fc + g * dfc, 0.0)


def _hermite(table: np.ndarray, h: float, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numpy twin of :func:`_lookup_value` and :func:`_lookup_derivative` (to check a table when it is built)."""
    t = r / h
    m = np.minimum(t.astype(np.int64), table.shape[0] - 2)
    u = (t - m)[:, None]
    f0, d0, f1, d1 = table[m, 0], table[m, 1], table[m + 1, 0], table[m + 1, 1]
    value = (1 + 2 * u) * (1 - u) ** 2 * f0 + h * u * (1 - u) ** 2 * d0 + u * u * (3 - 2 * u) * f1
    value += h * u * u * (u - 1) * d1
    deriv = (6 * u * u - 6 * u) / h * f0 + (3 * u * u - 4 * u + 1) * d0 + (6 * u - 6 * u * u) / h * f1
    deriv += (3 * u * u - 2 * u) * d1
    return value, deriv


def basis_table(centres: np.ndarray, eta: float, rc: float, cosine: bool) -> tuple[np.ndarray, float, float]:
    """Hermite table (n_knots, 2, K) of the basis values and r-derivatives at ``r_m = m h``, ``h`` and its error.

    ``rc`` is the last knot (so the table ends exactly where the basis vanishes with its derivative). ``h``
    starts at rc/256 and is halved until the interpolation error (values, and derivatives × h) on the
    midpoints and quarter points is below :data:`TABLE_TOLERANCE` × the largest value.
    """
    centres = np.asarray(centres, dtype=np.float64)
    if centres.size == 0:
        return np.zeros((2, 2, 1)), rc, 0.0
    n_intervals = 256
    while True:
        h = rc / n_intervals
        knots = np.arange(n_intervals + 1) * h
        value, deriv = analytic_basis(knots, centres, eta, rc, cosine)
        value[-1], deriv[-1] = 0.0, 0.0
        table = np.ascontiguousarray(np.stack([value, deriv], axis=1))
        probe = (np.arange(n_intervals)[:, None] + np.array([0.25, 0.5, 0.75])[None, :]).ravel() * h
        exact_v, exact_d = analytic_basis(probe, centres, eta, rc, cosine)
        approx_v, approx_d = _hermite(table, h, probe)
        scale = max(float(np.abs(value).max()), 1e-300)
        error = max(float(np.abs(approx_v - exact_v).max()), h * float(np.abs(approx_d - exact_d).max())) / scale
        if error <= TABLE_TOLERANCE or n_intervals >= 1 << 16:
            return table, h, error
        n_intervals *= 2


@dataclass(frozen=True)
class KernelParameters:
    """The descriptor in the flat form the kernels take (built by ``SymmetryFunctions.kernel_parameters``).

    floats:   [cutoff, angular_cutoff, h_radial, h_angular] (Å)
    ints:     [n_species, n_radial, n_angular, angular_order]
    parent, direction, degree: (C,) monomial recursion tables; weight, parity: (C,) float64
    pair_a, pair_b: (n_pairs,) species of each angular element pair
    dindex, dcoef: (C, 3) d mono_c / d u_d = dcoef[c, d] · mono[dindex[c, d]]
    table_radial (n_knots, 2, n_radial), table_angular (n_knots_a, 2, n_angular): see :func:`basis_table`
    table_error: the larger relative interpolation error of the two tables
    """

    floats: np.ndarray
    ints: np.ndarray
    parent: np.ndarray
    direction: np.ndarray
    degree: np.ndarray
    weight: np.ndarray
    parity: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    dindex: np.ndarray
    dcoef: np.ndarray
    table_radial: np.ndarray
    table_angular: np.ndarray
    table_error: float

    def args(self) -> tuple:
        """The positional arguments the kernels take after their per-call arrays."""
        return (
            self.floats,
            self.ints,
            self.parent,
            self.direction,
            self.degree,
            self.weight,
            self.parity,
            self.pair_a,
            self.pair_b,
            self.dindex,
            self.dcoef,
            self.table_radial,
            self.table_angular,
        )


class Workspace:
    """Arrays reused from call to call (kept by a potential): per-atom buffers of a large system are tens of
    MB, and fresh ones would be page-faulted in on every MD step."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        #: the pair topology of the last neighbour list (``mlpkit.descriptors.kernel_threads.PairTopology``)
        self.topology = None
        #: held by the potential for a whole prediction: the arrays are shared between its launches, so two Python
        #: threads predicting with one potential at once would overwrite each other's features and gradients
        self.lock = threading.RLock()

    def __getstate__(self) -> dict:
        return {}  # scratch memory: not worth pickling or copying with the potential

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """An array of ``shape`` and ``dtype`` (contents undefined), the same memory while both stay."""
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype=dtype)
            self._arrays[name] = a
        return a
