"""Atom-centred symmetry functions (Behler-Parrinello) in torch, vectorised over pairs.

For a centre atom ``i`` with neighbours ``j`` at distance ``r_ij`` (unit vector ``u_ij``):

Radial (G2), one block per neighbour element ``s`` and Gaussian centre ``R_k``::

    G2[i, s, k] = Σ_{j ∈ s} exp(-η (r_ij - R_k)²) f_c(r_ij)

Angular (G5 type, no r_jk term), one block per unordered element pair ``(s, s')``, Gaussian ``a`` and power
``n = 0..L`` of cos θ_ijk::

    G5[i, ss', a, n] = Σ_{j ∈ s} Σ_{k ∈ s'} g_a(r_ij) g_a(r_ik) (u_ij · u_ik)^n

with ``g_a(r) = exp(-η_a (r - R_a)²) f_c'(r)`` on a (shorter) angular cutoff. The double sum factorises
(the moment-tensor trick of MTP/ACE): with ``M[i, s, a] = Σ_{j ∈ s} g_a(r_ij) u_ij^{⊗n}``,
``G5 = <M[i, s, a], M[i, s', a]>`` (full contraction), so the cost is linear in the number of neighbours
instead of quadratic. Any Behler angular function ``(1 + λ cos θ)^ζ`` with integer ζ ≤ L is a linear
combination of the powers ``n ≤ L``, which the networks' first layer can form. The ``j = k`` terms are kept;
they are smooth, invariant functions of the radial distances.

All functions are smooth at the cutoff (the cutoff function and its first derivative vanish there), so energy
and forces are continuous as a neighbour crosses it. Forces and stress come from autograd with respect to
the pair vectors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations_with_replacement

import numpy as np
import torch
from ase.data import atomic_numbers

from mlpkit.descriptors.symmetry_fast import _AnalyticSymmetryFunctions, _monomial_derivatives
from mlpkit.descriptors.tables import KernelParameters, basis_table
from mlpkit.errors import InputError


@dataclass
class SymmetryFunctionSettings:
    """Parameters of the symmetry-function descriptor (lengths in Å).

    species:          element symbols, sorted by atomic number
    cutoff:           radial cutoff
    n_radial:         Gaussian centres per element for G2, evenly spaced on [r_min, cutoff]
    angular_cutoff:   cutoff of the angular functions (``None``: min(cutoff, 4.0); shorter is cheaper)
    n_angular:        Gaussian centres per element pair for G5, evenly spaced on [r_min, angular_cutoff]
    angular_order:    highest power L of cos θ (0..6; cost grows as (L+1)(L+2)(L+3)/6 monomials)
    r_min:            first Gaussian centre
    width:            Gaussian σ as a multiple of the centre spacing (η = 1 / (2 σ²))
    cutoff_function:  ``"cosine"`` (Behler's ½(cos(πr/rc)+1)) or ``"polynomial"`` (1 - 10x³ + 15x⁴ - 6x⁵,
                      also smooth in the second derivative)
    """

    species: tuple[str, ...]
    cutoff: float = 6.0
    n_radial: int = 16
    angular_cutoff: float | None = None
    n_angular: int = 6
    angular_order: int = 3
    r_min: float = 0.6
    width: float = 1.0
    cutoff_function: str = "cosine"

    def __post_init__(self) -> None:
        self.species = tuple(sorted(self.species, key=lambda s: atomic_numbers.get(s, 0)))
        for s in self.species:
            if s not in atomic_numbers:
                raise InputError(f"unknown element {s!r}")
        if not self.species:
            raise InputError("the descriptor needs at least one element")
        if self.angular_cutoff is None:
            self.angular_cutoff = min(self.cutoff, 4.0)
        if not 0 < self.r_min < self.angular_cutoff <= self.cutoff:
            raise InputError(
                f"need 0 < r_min < angular_cutoff <= cutoff, got r_min={self.r_min}, "
                f"angular_cutoff={self.angular_cutoff}, cutoff={self.cutoff}"
            )
        if not 0 <= self.angular_order <= 6:
            raise InputError(f"angular_order must be 0..6, got {self.angular_order}")
        if self.n_radial < 1 or self.n_angular < 0:
            raise InputError("n_radial must be >= 1 and n_angular >= 0")
        if self.cutoff_function not in ("cosine", "polynomial"):
            raise InputError(f"cutoff_function must be 'cosine' or 'polynomial', got {self.cutoff_function!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["species"] = list(self.species)
        return d


def _gaussian_grid(r_min: float, r_max: float, n: int, width: float) -> tuple[list[float], float]:
    """Centres evenly spaced on [r_min, r_max] (the last one placed before r_max, where f_c vanishes) and η."""
    if n == 1:
        return [r_min], 1.0 / (2 * (width * (r_max - r_min)) ** 2)
    step = (r_max - r_min) / n
    centres = [r_min + k * step for k in range(n)]
    return centres, 1.0 / (2 * (width * step) ** 2)


def _monomials(order: int) -> tuple[list[int], list[int], list[float], list[int]]:
    """Unique monomials u_x^a u_y^b u_z^c of degree 0..order, built recursively.

    Returns (parent index, direction 0/1/2 to multiply, sqrt(multinomial weight), degree) per monomial;
    weighting by sqrt(n!/(a!b!c!)) makes the plain dot product of two weighted monomial vectors of degree n
    equal to the full contraction of the symmetric tensors, i.e. (u·v)^n.
    """
    exps: list[tuple[int, int, int]] = [(0, 0, 0)]
    parent, direction, degree = [-1], [-1], [0]
    prev = [0]
    for n in range(1, order + 1):
        cur = []
        for a in range(n, -1, -1):
            for b in range(n - a, -1, -1):
                c = n - a - b
                e = (a, b, c)
                d = 0 if a > 0 else (1 if b > 0 else 2)
                pe = list(e)
                pe[d] -= 1
                parent.append(exps.index(tuple(pe)))
                direction.append(d)
                degree.append(n)
                exps.append(e)
                cur.append(len(exps) - 1)
        prev = cur
    del prev
    weights = [
        math.sqrt(math.factorial(sum(e)) / (math.factorial(e[0]) * math.factorial(e[1]) * math.factorial(e[2])))
        for e in exps
    ]
    return parent, direction, weights, degree


class SymmetryFunctions(torch.nn.Module):
    """The descriptor as a torch module: pair vectors in, (n_atoms, n_features) features out.

    Feature layout per atom: ``[G2 (n_species × n_radial), G5 (n_pairs × n_angular × (L+1))]`` with element
    pairs ``(s, s')``, ``s <= s'`` in species order.
    """

    def __init__(self, settings: SymmetryFunctionSettings):
        super().__init__()
        self.settings = settings
        s = settings
        self.n_species = len(s.species)
        self.cutoff = float(s.cutoff)
        self.angular_cutoff = float(s.angular_cutoff)
        mu, eta = _gaussian_grid(s.r_min, s.cutoff, s.n_radial, s.width)
        self.register_buffer("mu", torch.tensor(mu, dtype=torch.float64))
        self.eta = float(eta)
        self.n_angular = s.n_angular
        if s.n_angular > 0:
            mu_a, eta_a = _gaussian_grid(s.r_min, s.angular_cutoff, s.n_angular, s.width)
        else:
            mu_a, eta_a = [], 1.0
        self.register_buffer("mu_a", torch.tensor(mu_a, dtype=torch.float64))
        self.eta_a = float(eta_a)
        parent, direction, weights, degree = _monomials(s.angular_order)
        self.n_monomials = len(parent)
        self._parent = parent
        self._direction = direction
        self.register_buffer("mono_weight", torch.tensor(weights, dtype=torch.float64))
        index, coef = _monomial_derivatives(parent, direction)
        self.register_buffer("mono_dindex", index, persistent=False)
        self.register_buffer("mono_dcoef", coef, persistent=False)
        self.register_buffer("parity", torch.tensor([(-1.0) ** n for n in degree], dtype=torch.float64))
        group = torch.zeros(len(parent), s.angular_order + 1, dtype=torch.float64)
        group[torch.arange(len(parent)), torch.tensor(degree)] = 1.0
        self.register_buffer("group", group)
        pairs = list(combinations_with_replacement(range(self.n_species), 2))
        self.register_buffer("pair_a", torch.tensor([p[0] for p in pairs], dtype=torch.long))
        self.register_buffer("pair_b", torch.tensor([p[1] for p in pairs], dtype=torch.long))
        self.n_pairs = len(pairs)
        self.n_radial_features = self.n_species * s.n_radial
        self.n_angular_features = self.n_pairs * s.n_angular * (s.angular_order + 1)
        self.n_features = self.n_radial_features + self.n_angular_features
        self.cosine = s.cutoff_function == "cosine"

    def kernel_parameters(self) -> KernelParameters:
        """The descriptor in the flat form of the compiled kernels (:mod:`mlpkit.descriptors.kernels`)."""
        s = self.settings
        mu = self.mu.detach().cpu().double().numpy()
        mu_a = self.mu_a.detach().cpu().double().numpy()
        table_r, h_r, err_r = basis_table(mu, self.eta, self.cutoff, self.cosine)
        table_a, h_a, err_a = basis_table(mu_a, self.eta_a, self.angular_cutoff, self.cosine)
        return KernelParameters(
            floats=np.array([self.cutoff, self.angular_cutoff, h_r, h_a], dtype=np.float64),
            ints=np.array([self.n_species, s.n_radial, s.n_angular, s.angular_order], dtype=np.int64),
            parent=np.array([0, *self._parent[1:]], dtype=np.int64),
            direction=np.array([0, *self._direction[1:]], dtype=np.int64),
            degree=self.group.argmax(dim=1).cpu().numpy().astype(np.int64),
            weight=self.mono_weight.detach().cpu().double().numpy().copy(),
            parity=self.parity.detach().cpu().double().numpy().copy(),
            pair_a=self.pair_a.cpu().numpy().astype(np.int64),
            pair_b=self.pair_b.cpu().numpy().astype(np.int64),
            dindex=self.mono_dindex.cpu().numpy().astype(np.int64),
            dcoef=self.mono_dcoef.detach().cpu().double().numpy().copy(),
            table_radial=table_r,
            table_angular=table_a,
            table_error=max(err_r, err_a),
        )

    def feature_names(self) -> list[str]:
        """Human-readable name of every feature column."""
        s = self.settings
        names = [f"G2[{e}]({m:.2f})" for e in s.species for m in self.mu.tolist()]
        for a, b in zip(self.pair_a.tolist(), self.pair_b.tolist(), strict=True):
            for m in self.mu_a.tolist():
                names += [f"G5[{s.species[a]}{s.species[b]}]({m:.2f},n={n})" for n in range(s.angular_order + 1)]
        return names

    @staticmethod
    def _gauss(r: torch.Tensor, mu: torch.Tensor, eta: float) -> torch.Tensor:
        # The clamp keeps exp out of its very slow underflow path on x86 (arguments below ~ -87 in float32);
        # exp(-30) ~ 1e-13 is zero for every practical purpose.
        return torch.exp(torch.clamp(-eta * (r[:, None] - mu) ** 2, min=-30.0))

    def _fc(self, r: torch.Tensor, rc: float) -> torch.Tensor:
        x = torch.clamp(r / rc, max=1.0)
        if self.cosine:
            return 0.5 * (torch.cos(math.pi * x) + 1.0)
        return 1.0 + x * x * x * (-10.0 + x * (15.0 - 6.0 * x))

    def forward(
        self,
        vectors: torch.Tensor,
        centers: torch.Tensor,
        neighbors: torch.Tensor,
        species: torch.Tensor,
        half: bool = True,
        fast: bool = False,
    ) -> torch.Tensor:
        """Features (n_atoms, n_features) from pair vectors.

        vectors:    (P, 3) Å, position of ``neighbors[p]``'s image minus position of ``centers[p]``
        centers:    (P,) first atom of each pair
        neighbors:  (P,) second atom of each pair
        species:    (N,) species index (0..n_species-1) of every atom
        half:       each pair appears once (it then counts for both atoms, with the vector reversed);
                    ``False`` for a full list where both directions appear
        fast:       when the features will be differentiated once (forces for prediction and MD, not
                    training on forces): hand-written derivatives over cache-sized pair chunks, same
                    values, 2-3x faster at 10^4 atoms (see docs/benchmarks/md-speed.md)
        """
        dtype, device = vectors.dtype, vectors.device
        S = self.n_species
        n_atoms = species.shape[0]
        r = torch.linalg.vector_norm(vectors, dim=1)
        if r.numel() and float(r.detach().max()) >= self.cutoff:
            # lists with a skin (Verlet) hold pairs beyond the cutoff: drop them before the costly basis
            keep = torch.nonzero(r < self.cutoff).squeeze(1)
            r, vectors, centers, neighbors = r[keep], vectors[keep], centers[keep], neighbors[keep]
        if fast and vectors.requires_grad and torch.is_grad_enabled():
            return _AnalyticSymmetryFunctions.apply(vectors, self, r.detach(), centers, neighbors, species, half)
        slot = centers * S + species[neighbors]
        radial = self._gauss(r, self.mu.to(dtype), self.eta) * self._fc(r, self.cutoff)[:, None]
        g2 = torch.zeros(n_atoms * S, radial.shape[1], dtype=dtype, device=device).index_add(0, slot, radial)
        if half:
            slot_back = neighbors * S + species[centers]
            g2 = g2.index_add(0, slot_back, radial)
        g2 = g2.view(n_atoms, -1)
        if self.n_angular == 0:
            return g2
        if self.angular_cutoff < self.cutoff:
            sel = torch.nonzero(r < self.angular_cutoff).squeeze(1)
            ra, va, slot_a = r[sel], vectors[sel], slot[sel]
        else:
            sel, ra, va, slot_a = None, r, vectors, slot
        u = va / ra[:, None]
        ga = self._gauss(ra, self.mu_a.to(dtype), self.eta_a) * self._fc(ra, self.angular_cutoff)[:, None]
        mono = [torch.ones_like(ra)]
        for p, d in zip(self._parent[1:], self._direction[1:], strict=True):
            mono.append(mono[p] * u[:, d])
        y = torch.stack(mono, dim=1) * self.mono_weight.to(dtype)  # (Pa, C)
        if half:
            # the reversed pair: same radial part, u -> -u flips the odd-degree monomials
            back = neighbors * S + species[centers]
            slot_a = torch.cat([slot_a, back if sel is None else back[sel]])
            ga = torch.cat([ga, ga])
            y = torch.cat([y, y * self.parity.to(dtype)])
        # Moments M[slot] = Σ_{pairs in slot} ga ⊗ y as one batched matmul over a padded (slot, neighbour) layout:
        # much faster on CPU than materialising the (pairs, K, C) outer products and scattering them.
        n_slots = n_atoms * S
        order = torch.sort(slot_a, stable=True).indices
        counts = torch.bincount(slot_a, minlength=n_slots)
        starts = torch.cumsum(counts, 0) - counts
        col = torch.empty_like(slot_a)
        col[order] = torch.arange(slot_a.shape[0], device=device) - starts[slot_a[order]]
        width = int(counts.max()) if slot_a.numel() else 1
        K, C = self.n_angular, self.n_monomials
        gpad = torch.zeros(n_slots, width, K, dtype=dtype, device=device).index_put((slot_a, col), ga)
        ypad = torch.zeros(n_slots, width, C, dtype=dtype, device=device).index_put((slot_a, col), y)
        m = torch.bmm(gpad.transpose(1, 2), ypad).view(n_atoms, S, K, C)
        prod = m[:, self.pair_a] * m[:, self.pair_b]  # (N, n_pairs, K, C)
        g5 = (prod @ self.group.to(dtype)).reshape(n_atoms, -1)
        return torch.cat([g2, g5], dim=1)
