"""The moment-tensor basis of MTP (Shapeev 2016), with fixed species-resolved radial functions, in torch.

For a centre atom ``i`` with neighbours ``j`` (element ``s_j``) at vector ``r_ij`` (length ``r``, direction
``u = r_ij / r``) the *moments* are

    ``M[i, s, k, ν] = Σ_{j ∈ s} R_k(r_ij) u^{⊗ν}``            (a symmetric rank-ν tensor)
    ``R_k(r) = T_k(ξ) (r_c - r)² / r_c²``,   ``ξ = (2r - r_min - r_c) / (r_c - r_min)``

(``T_k`` Chebyshev polynomials, as MTP's radial basis; zero with zero slope at ``r_c``). As in MTP, a moment
has level ``lev = 2 + 4k + ν``; rotation invariants are full contractions of one (``ν = 0``), two (``M_a : M_b``,
equal ranks) or three moments (``ν1 + ν2 + ν3`` even, triangle rule: the contraction pattern is then unique),
and a basis function ``B_α`` is a product of invariants whose levels add up to at most ``level``. MTP trains
the radial functions as species-pair-dependent combinations of Chebyshev polynomials (a nonlinear fit); here
the radial functions are fixed and the neighbour element is an index of the moment instead, so the model stays
linear in its coefficients and is fitted by one least-squares solve. Tensors are stored as monomials
``u_x^a u_y^b u_z^c`` (a+b+c = ν) and expanded to full Cartesian form only inside the contractions.

Everything is vectorised over pairs and atoms; derivatives are exact: in prediction, autograd through the
invariants, the product rule by hand through the basis products and the chain rule by hand through the pair
features (compiled pair loops in :mod:`mlpkit.potentials.mtp.kernels`); for the design matrix, forward mode over
three tangents per pair (:meth:`MomentTensorBasis.pair_jacobian`). Which invariants and products a level holds is
:mod:`mlpkit.potentials.mtp.invariants`.
"""

from __future__ import annotations

import numpy as np
import torch

from mlpkit.potentials.mtp.invariants import Invariant, enumerate_basis, enumerate_invariants, monomials

__all__ = ["Invariant", "MomentTensorBasis"]


class MomentTensorBasis:
    """Moment-tensor basis functions of one level for ``n_species`` elements (see module docstring).

    n_species:  number of elements (neighbour moments are resolved by element)
    level:      the MTP level (max Σ (2 + 4k + ν) over the moments of a basis function), e.g. 8-20
    max_rank:   highest tensor rank ν used (cost grows as 3^ν in the contractions)
    cutoff:     r_c, Å
    r_min:      lower end of the Chebyshev interval, Å
    """

    def __init__(self, n_species: int, level: int, max_rank: int, cutoff: float, r_min: float):
        self.n_species, self.level, self.max_rank = int(n_species), int(level), int(max_rank)
        self.cutoff, self.r_min = float(cutoff), float(r_min)
        self.n_radial = (self.level - 2) // 4 + 1
        self.monos, self.expand, self.offsets = monomials(self.max_rank)
        self.n_mono = len(self.monos)
        self.invariants = enumerate_invariants(self.n_species * self.n_radial, self.n_radial, self.level, self.max_rank)
        self.basis = enumerate_basis(self.invariants, self.level)
        self._prepare_index()

    @property
    def n_basis(self) -> int:
        return len(self.basis)

    def _prepare_index(self) -> None:
        inv = self.invariants
        self._scalars = torch.tensor([v.moments[0][0] for v in inv if len(v.moments) == 1], dtype=torch.long)
        self._pairs: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        for nu in range(1, self.max_rank + 1):
            sel = [v for v in inv if len(v.moments) == 2 and v.moments[0][1] == nu]
            if sel:
                a = torch.tensor([v.moments[0][0] for v in sel], dtype=torch.long)
                b = torch.tensor([v.moments[1][0] for v in sel], dtype=torch.long)
                self._pairs.append((nu, a, b))
        self._triples = []
        ranks = sorted({tuple(m[1] for m in v.moments) for v in inv if len(v.moments) == 3})
        for n1, n2, n3 in ranks:
            sel = [v for v in inv if len(v.moments) == 3 and tuple(m[1] for m in v.moments) == (n1, n2, n3)]
            chans = [sorted({v.moments[t][0] for v in sel}) for t in range(3)]
            local = [torch.tensor([chans[t].index(v.moments[t][0]) for v in sel], dtype=torch.long) for t in range(3)]
            a12, a13, a23 = (n1 + n2 - n3) // 2, (n1 + n3 - n2) // 2, (n2 + n3 - n1) // 2
            used = [torch.tensor(c, dtype=torch.long) for c in chans]
            self._triples.append(((n1, n2, n3), (a12, a13, a23), used, local))
        # invariants are evaluated grouped (scalars, pairs by rank, triples by ranks): the order they come out in
        grouped = [v for v in inv if len(v.moments) == 1]
        for nu, _, _ in self._pairs:
            grouped += [v for v in inv if len(v.moments) == 2 and v.moments[0][1] == nu]
        for (n1, n2, n3), *_ in self._triples:
            grouped += [v for v in inv if len(v.moments) == 3 and tuple(m[1] for m in v.moments) == (n1, n2, n3)]
        position = {id(v): n for n, v in enumerate(grouped)}
        to_grouped = [position[id(v)] for v in inv]
        # every prefix of a basis function's factor list is itself a basis function (the enumeration grows
        # prefixes): B = B_parent x I_last, evaluated depth by depth (one product per function, not per factor)
        where = {factors: n for n, factors in enumerate(self.basis)}
        depth = max((len(f) for f in self.basis), default=0)
        self._groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        local: dict[int, int] = {}
        for d in range(1, depth + 1):
            rows = [n for n, f in enumerate(self.basis) if len(f) == d]
            parents = [local[where[self.basis[n][:-1]]] if d > 1 else -1 for n in rows]
            last = [to_grouped[self.basis[n][-1]] for n in rows]
            local.update({n: k for k, n in enumerate(rows)})
            self._groups.append(
                (torch.tensor(rows, dtype=torch.long), torch.tensor(parents, dtype=torch.long), torch.tensor(last))
            )
        order = torch.cat([g[0] for g in self._groups]) if self._groups else torch.zeros(0, dtype=torch.long)
        self._unsort = torch.argsort(order)
        # monomials of rank ν → full Cartesian tensor, as a 0/1 matrix (n_mono_ν, 3^ν)
        self._expand_matrix = {}
        for nu in range(1, self.max_rank + 1):
            e = torch.zeros((nu + 1) * (nu + 2) // 2, 3**nu, dtype=torch.float64)
            e[self.expand[nu] - self.offsets[nu], torch.arange(3**nu)] = 1.0
            self._expand_matrix[nu] = e
        self._mono = torch.tensor(self.monos, dtype=torch.long)  # (n_mono, 3)
        position = {m: n for n, m in enumerate(self.monos)}
        # monomial m with the exponent of axis x lowered by one (n_mono: a zero column when that exponent is 0)
        self._lower = torch.tensor(
            [
                [position.get(tuple(e - (x == ax) for ax, e in enumerate(m)), self.n_mono) for m in self.monos]
                for x in range(3)
            ],
            dtype=torch.long,
        )
        self._lower_coef = self._mono.T.to(torch.float64)  # (3, n_mono): the exponent that comes down
        self._nu = self._mono.sum(1).to(torch.float64)
        self._mono_np = np.ascontiguousarray(self._mono.numpy())
        self._lower_np = np.ascontiguousarray(self._lower.numpy())
        self._nu_np = self._nu.numpy().copy()

    # -- per pair --------------------------------------------------------------------------------------

    def radial(self, r: torch.Tensor, derivative: bool = False):
        """R_k(r): (P, n_radial), zero at and beyond the cutoff; with ``derivative``, also dR_k/dr (P, n_radial)."""
        rc = self.cutoff
        inside = r < rc
        d = torch.where(inside, rc - r, torch.zeros_like(r))
        envelope = d * d / rc**2
        xi = (2 * r - (self.r_min + rc)) / (rc - self.r_min)
        t = [torch.ones_like(r), xi]
        for _ in range(2, self.n_radial):
            t.append(2 * xi * t[-1] - t[-2])
        t = torch.stack(t[: self.n_radial], dim=-1)
        value = t * envelope[..., None]
        if not derivative:
            return value
        # Chebyshev derivatives: T'_{k+1} = 2 T_k + 2 ξ T'_k - T'_{k-1}
        dt = [torch.zeros_like(r), torch.ones_like(r)]
        for k in range(2, self.n_radial):
            dt.append(2 * t[..., k - 1] + 2 * xi * dt[-1] - dt[-2])
        dt = torch.stack(dt[: self.n_radial], dim=-1)
        denvelope = -2 * d / rc**2
        return value, dt * (2 / (rc - self.r_min)) * envelope[..., None] + t * denvelope[..., None]

    def _monomial_values(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Monomials of unit vectors u (P, 3): values (P, n_mono) and the powers table (max_rank + 1, P, 3)."""
        powers = [torch.ones_like(u), u]  # u^0, u^1, ... by products (no pow: its x^0 gradient is NaN at 0)
        for _ in range(2, self.max_rank + 1):
            powers.append(powers[-1] * u)
        powers = torch.stack(powers[: self.max_rank + 1])
        m = self._mono
        return (powers[m[:, 0], :, 0] * powers[m[:, 1], :, 1] * powers[m[:, 2], :, 2]).T, powers

    def pair_features(self, vectors: torch.Tensor) -> torch.Tensor:
        """Φ[p, k, m] = R_k(r_p) u_p^{mono m}: (P, n_radial, n_mono) for pair vectors (P, 3) Å."""
        r = torch.linalg.norm(vectors, dim=-1)
        mono, _ = self._monomial_values(vectors / r[:, None])
        return self.radial(r)[:, :, None] * mono[:, None, :]

    def pair_feature_derivatives(self, vectors: torch.Tensor) -> torch.Tensor:
        """dΦ[p, k, m]/dr_p: (P, n_radial, n_mono, 3), analytic.

        ``d mono/dr = (∇_u mono - ν mono u) / r`` (a monomial of degree ν is homogeneous in u) and
        ``dR/dr = R'(r) u``.
        """
        r = torch.linalg.norm(vectors, dim=-1)
        u = vectors / r[:, None]
        mono, powers = self._monomial_values(u)
        value, slope = self.radial(r, derivative=True)
        m = self._mono
        grads = []
        for axis in range(3):
            e = m.clone()
            coef = e[:, axis].to(u.dtype)
            e[:, axis] = (e[:, axis] - 1).clamp(min=0)
            grads.append(coef[None, :] * (powers[e[:, 0], :, 0] * powers[e[:, 1], :, 1] * powers[e[:, 2], :, 2]).T)
        grad_u = torch.stack(grads, dim=-1)  # (P, n_mono, 3)
        nu = m.sum(1).to(u.dtype)
        dmono = (grad_u - (nu[None, :] * mono)[..., None] * u[:, None, :]) / r[:, None, None]
        return (
            slope[:, :, None, None] * mono[:, None, :, None] * u[:, None, None, :]
            + value[:, :, None, None] * dmono[:, None, :, :]
        )

    def pair_gradient(
        self, moment_grad: torch.Tensor, vectors: torch.Tensor, centers: torch.Tensor, neighbor_species: torch.Tensor
    ) -> torch.Tensor:
        """dE/dr_p (P, 3) from dE/dM (N, channels, n_mono), by the chain rule through Φ written out by hand.

        With ``H = dE/dM[centre, element of neighbour]``: ``dE/dr = (Σ H R' mono) u + (Σ_m a_m ∇_u mono_m -
        (Σ_m a_m ν_m mono_m) u) / r``, ``a_m = Σ_k H_km R_k``: no (P, K, n_mono, 3) array, no autograd graph per pair.
        """
        S, K = self.n_species, self.n_radial
        r = torch.linalg.norm(vectors, dim=-1)
        u = vectors / r[:, None]
        mono, _ = self._monomial_values(u)
        value, slope = self.radial(r, derivative=True)
        h = moment_grad.reshape(-1, S, K, self.n_mono)[centers, neighbor_species]  # (P, K, n_mono)
        a = torch.einsum("pkm,pk->pm", h, value)
        b = torch.einsum("pkm,pk->pm", h, slope)
        # ∂ mono_m / ∂u_x = a_x(m) mono_{m - e_x}: one gather per axis from the monomials themselves
        padded = torch.cat([mono, mono.new_zeros(len(mono), 1)], dim=1)
        grad_u = torch.stack([(a * self._lower_coef[x] * padded[:, self._lower[x]]).sum(1) for x in range(3)], 1)
        radial_part = (b * mono).sum(1) - (a * self._nu * mono).sum(1) / r
        return radial_part[:, None] * u + grad_u / r[:, None]

    def moments(self, phi: torch.Tensor, centers: torch.Tensor, neighbor_species: torch.Tensor, n_atoms: int):
        """Sum pair features into moments (n_atoms, n_species * n_radial, n_mono) (channel = s * n_radial + k)."""
        S, K = self.n_species, self.n_radial
        out = phi.new_zeros(n_atoms * S, K, self.n_mono)
        out.index_add_(0, centers * S + neighbor_species, phi)
        return out.reshape(n_atoms, S * K, self.n_mono)

    # -- compiled pair loops (prediction) -------------------------------------------------------------------

    def moments_compiled(self, vectors: np.ndarray, centers: np.ndarray, neighbor_species: np.ndarray, n_atoms: int):
        """Moments (n_atoms, channels, n_mono) from the numba kernel (same values as ``moments(pair_features)``)."""
        from mlpkit.potentials.mtp import kernels

        return kernels.moments(
            np.ascontiguousarray(vectors, dtype=np.float64),
            np.ascontiguousarray(centers, dtype=np.int64),
            np.ascontiguousarray(neighbor_species, dtype=np.int64),
            int(n_atoms),
            self.n_species,
            self.n_radial,
            self.cutoff,
            self.r_min,
            self._mono_np,
            self.max_rank,
        )

    def pair_gradient_compiled(self, moment_grad: np.ndarray, vectors, centers, neighbor_species) -> np.ndarray:
        """dE/dr_p (P, 3) from dE/dM, numba kernel (same values as :meth:`pair_gradient`)."""
        from mlpkit.potentials.mtp import kernels

        return kernels.pair_gradient(
            np.ascontiguousarray(moment_grad, dtype=np.float64),
            np.ascontiguousarray(vectors, dtype=np.float64),
            np.ascontiguousarray(centers, dtype=np.int64),
            np.ascontiguousarray(neighbor_species, dtype=np.int64),
            self.n_radial,
            self.cutoff,
            self.r_min,
            self._mono_np,
            self.max_rank,
            self._lower_np,
            self._nu_np,
        )

    # -- per atom --------------------------------------------------------------------------------------

    def invariant_values(self, moments: torch.Tensor) -> torch.Tensor:
        """Invariants (B, n_invariants) of moments (B, channels, n_mono), in the grouped order of the factor table.

        Full Cartesian tensors come from the monomials by a fixed 0/1 matrix product (no gather: its backward is a
        scatter); pair contractions are Gram matrices of all channels, triple contractions are computed for all
        channels a rank pattern uses; the wanted entries are picked from those small per-atom arrays.
        """
        out = []
        n, C = moments.shape[0], moments.shape[1]
        if len(self._scalars):
            out.append(moments[:, self._scalars, 0])
        full = {}
        for nu in range(1, self.max_rank + 1):
            block = moments[:, :, self.offsets[nu] : self.offsets[nu] + (nu + 1) * (nu + 2) // 2]
            full[nu] = block @ self._expand_matrix[nu]  # (B, C, 3^ν)
        for nu, a, b in self._pairs:
            gram = torch.bmm(full[nu], full[nu].transpose(1, 2)).reshape(n, C * C)
            out.append(gram[:, a * C + b])
        for (n1, n2, n3), (a12, a13, a23), used, local in self._triples:
            x1 = full[n1][:, used[0]].reshape(n, -1, 3**a12, 3**a13)
            x2 = full[n2][:, used[1]].reshape(n, -1, 3**a12, 3**a23)
            x3 = full[n3][:, used[2]].reshape(n, -1, 3**a13, 3**a23)
            y = torch.einsum("bapq,bdpr->badqr", x1, x2)
            z = torch.einsum("badqr,beqr->bade", y, x3)
            out.append(z[:, local[0], local[1], local[2]])
        return torch.cat(out, dim=1)

    def _depth_values(self, invariants: torch.Tensor) -> list[torch.Tensor]:
        """Basis values grouped by number of factors: list of (B, n_d)."""
        out: list[torch.Tensor] = []
        for d, (_, parents, last) in enumerate(self._groups):
            factor = invariants[:, last]
            out.append(factor if d == 0 else out[-1][:, parents] * factor)
        return out

    def basis_values(self, moments: torch.Tensor) -> torch.Tensor:
        """B (B, n_basis): products of invariants of moments (B, channels, n_mono)."""
        groups = self._depth_values(self.invariant_values(moments))
        return torch.cat(groups, dim=1)[:, self._unsort]

    def energy_and_invariant_gradient(
        self, invariants: torch.Tensor, coefficients: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Atomic energies ``Σ_α c_iα B_iα`` (N,) and their gradient with respect to the invariants (N, n_inv).

        ``coefficients`` (N, n_basis) are each atom's element row. Reverse mode by hand through the depth
        groups (``B = B_parent x I_last``): no autograd graph through the basis products, the largest arrays of
        a step.
        """
        values = self._depth_values(invariants)
        coeffs = [coefficients[:, rows] for rows, _, _ in self._groups]
        energy = sum((c * v).sum(1) for c, v in zip(coeffs, values, strict=True))
        grad = torch.zeros_like(invariants)
        upstream = coeffs[-1] if coeffs else None
        for d in range(len(self._groups) - 1, -1, -1):
            _, parents, last = self._groups[d]
            if d == 0:
                grad.index_add_(1, last, upstream)
                break
            grad.index_add_(1, last, upstream * values[d - 1][:, parents])
            below = coeffs[d - 1].clone()
            below.index_add_(1, parents, upstream * invariants[:, last])
            upstream = below
        return energy, grad

    # -- derivatives for the design matrix -------------------------------------------------------------

    def pair_jacobian(
        self, moments: torch.Tensor, vectors: torch.Tensor, centers: torch.Tensor, neighbor_species: torch.Tensor
    ) -> torch.Tensor:
        """dB_α(centre of p) / d r_p for every pair p: (P, 3, n_basis), exact (forward-mode AD).

        Moments enter each basis function polynomially, so the derivative along a pair is the basis function's
        directional derivative at its centre's moments in the direction dΦ_p/dr (nonzero only in the channels of
        the neighbour's element); the pairs are processed as one batch of 3P tangents.
        """
        from torch.func import jvp

        S, K = self.n_species, self.n_radial
        P = len(vectors)
        if P == 0:
            return vectors.new_zeros(0, 3, self.n_basis)
        dphi = self.pair_feature_derivatives(vectors)  # (P, K, n_mono, 3)
        tangent = vectors.new_zeros(P, 3, S, K, self.n_mono)
        tangent[torch.arange(P), :, neighbor_species] = dphi.permute(0, 3, 1, 2)
        primal = moments[centers][:, None].expand(P, 3, S * K, self.n_mono).reshape(3 * P, S * K, self.n_mono)
        _, out = jvp(self.basis_values, (primal,), (tangent.reshape(3 * P, S * K, self.n_mono),))
        return out.reshape(P, 3, self.n_basis)
