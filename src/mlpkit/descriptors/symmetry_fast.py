"""The inference fast path of the symmetry functions: analytic derivatives instead of autograd, pairs in
cache-sized chunks. :meth:`mlpkit.descriptors.symmetry.SymmetryFunctions.forward` with ``fast=True`` uses it."""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

#: pairs per chunk of the fast path: the (chunk, n_radial) temporaries stay in the CPU's L2 cache
PAIR_CHUNK = 4096


def _cutoff_and_derivative(r: torch.Tensor, rc: float, cosine: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """f_c(r) and d f_c/dr (both zero beyond ``rc``)."""
    x = torch.clamp(r / rc, max=1.0)
    if cosine:
        f = 0.5 * (torch.cos(math.pi * x) + 1.0)
        df = (-0.5 * math.pi / rc) * torch.sin(math.pi * x)
    else:
        f = 1.0 + x * x * x * (-10.0 + x * (15.0 - 6.0 * x))
        df = x * x * (-30.0 + x * (60.0 - 30.0 * x)) / rc
    return f, torch.where(r < rc, df, torch.zeros_like(df))


def _gauss_and_derivative(r: torch.Tensor, mu: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """exp(max(-η (r - μ)², -30)) (as :meth:`SymmetryFunctions._gauss`) and its r-derivative, (P, K) each."""
    d = r[:, None] - mu
    x = -eta * d * d
    e = torch.exp(torch.clamp(x, min=-30.0))
    de = torch.where(x >= -30.0, e * (-2.0 * eta) * d, torch.zeros_like(e))
    return e, de


def _monomial_derivatives(parent: list[int], direction: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``index[c, d]``, ``coef[c, d]`` with ∂mono_c/∂u_d = coef[c, d] · mono_{index[c, d]} (unweighted monomials)."""
    exps = [(0, 0, 0)]
    for p, d in zip(parent[1:], direction[1:], strict=True):
        e = list(exps[p])
        e[d] += 1
        exps.append(tuple(e))
    lookup = {e: k for k, e in enumerate(exps)}
    index = torch.zeros(len(exps), 3, dtype=torch.long)
    coef = torch.zeros(len(exps), 3, dtype=torch.float64)
    for c, e in enumerate(exps):
        for d in range(3):
            if e[d] > 0:
                lower = list(e)
                lower[d] -= 1
                index[c, d] = lookup[tuple(lower)]
                coef[c, d] = e[d]
    return index, coef


class _AnalyticSymmetryFunctions(torch.autograd.Function):
    """Symmetry functions whose backward (dE/dG → dE/d vectors) is written out by hand.

    Same values as :meth:`SymmetryFunctions.forward`; the backward needs a few passes over the pairs instead of
    autograd's dozens, and both run over chunks of :data:`PAIR_CHUNK` pairs, so time per atom does not grow
    with the system (the unchunked temporaries outgrow the caches beyond ~1,000 atoms). Not twice
    differentiable: used only where forces are not themselves differentiated (prediction, MD), see
    ``fast`` in :meth:`SymmetryFunctions.forward`.
    """

    @staticmethod
    def forward(ctx, vectors, sf, r, centers, neighbors, species, half):
        dtype, device = vectors.dtype, vectors.device
        S, N, P = sf.n_species, species.shape[0], vectors.shape[0]
        mu = sf.mu.to(dtype)
        chunk = PAIR_CHUNK
        slot = centers * S + species[neighbors]
        slot_back = neighbors * S + species[centers] if half else slot
        g2 = torch.zeros(N * S, mu.shape[0], dtype=dtype, device=device)
        dradial = []  # d(radial basis)/dr per chunk, for the backward
        for a in range(0, P, chunk):
            rr = r[a : a + chunk]
            e, de = _gauss_and_derivative(rr, mu, sf.eta)
            fc, dfc = _cutoff_and_derivative(rr, sf.cutoff, sf.cosine)
            g2.index_add_(0, slot[a : a + chunk], e * fc[:, None])
            if half:
                g2.index_add_(0, slot_back[a : a + chunk], e * fc[:, None])
            dradial.append(de.mul_(fc[:, None]).add_(e * dfc[:, None]))
        ctx.sf, ctx.half, ctx.n_atoms, ctx.dradial = sf, half, N, dradial
        if sf.n_angular == 0:
            ctx.save_for_backward(vectors, r, slot, slot_back)
            return g2.view(N, -1)
        K, C = sf.n_angular, sf.n_monomials
        sel = torch.nonzero(r < sf.angular_cutoff).squeeze(1)
        ra, ua = r[sel], vectors[sel] / r[sel, None]
        slot_a, slot_ab = slot[sel], slot_back[sel]
        mu_a, w, parity = sf.mu_a.to(dtype), sf.mono_weight.to(dtype), sf.parity.to(dtype)
        pa = ra.shape[0]
        ga_all = torch.empty(pa, K, dtype=dtype, device=device)
        dga_all = torch.empty(pa, K, dtype=dtype, device=device)
        mono_all = torch.empty(pa, C, dtype=dtype, device=device)
        m = torch.zeros(N * S, K * C, dtype=dtype, device=device)
        for a in range(0, pa, chunk):
            b = min(pa, a + chunk)
            e, de = _gauss_and_derivative(ra[a:b], mu_a, sf.eta_a)
            fc, dfc = _cutoff_and_derivative(ra[a:b], sf.angular_cutoff, sf.cosine)
            ga = e * fc[:, None]
            ga_all[a:b] = ga
            dga_all[a:b] = de * fc[:, None] + e * dfc[:, None]
            mono = mono_all[a:b]
            mono[:, 0] = 1.0
            for c, (p, d) in enumerate(zip(sf._parent[1:], sf._direction[1:], strict=True), start=1):
                torch.mul(mono[:, p], ua[a:b, d], out=mono[:, c])
            y = mono * w
            m.index_add_(0, slot_a[a:b], (ga[:, :, None] * y[:, None, :]).view(b - a, K * C))
            if half:  # the reversed pair: u -> -u flips the odd-degree monomials
                m.index_add_(0, slot_ab[a:b], (ga[:, :, None] * (y * parity)[:, None, :]).view(b - a, K * C))
        m = m.view(N, S, K, C)
        g5 = ((m[:, sf.pair_a] * m[:, sf.pair_b]) @ sf.group.to(dtype)).reshape(N, -1)
        ctx.save_for_backward(vectors, r, slot, slot_back, sel, ra, ua, slot_a, slot_ab, ga_all, dga_all, mono_all, m)
        return torch.cat([g2.view(N, -1), g5], dim=1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_features):
        sf, half, N = ctx.sf, ctx.half, ctx.n_atoms
        S, chunk = sf.n_species, PAIR_CHUNK
        vectors, r, slot, slot_back = ctx.saved_tensors[:4]
        dtype, device = vectors.dtype, vectors.device
        nr = sf.mu.shape[0]
        gg2 = grad_features[:, : S * nr].reshape(N * S, nr)
        # radial: dE/dr_p = Σ_k dE/dG2[slot_p, k] · dR_k/dr (both atoms of a half-list pair)
        dedr = torch.empty(r.shape[0], dtype=dtype, device=device)
        for k, a in enumerate(range(0, r.shape[0], chunk)):
            g = gg2[slot[a : a + chunk]]
            if half:
                g += gg2[slot_back[a : a + chunk]]
            torch.sum(g.mul_(ctx.dradial[k]), 1, out=dedr[a : a + chunk])
        grad = (dedr / r)[:, None] * vectors
        if sf.n_angular == 0:
            return grad, None, None, None, None, None, None
        sel, ra, ua, slot_a, slot_ab, ga_all, dga_all, mono_all, m = ctx.saved_tensors[4:]
        K, C = sf.n_angular, sf.n_monomials
        # G5[i, (s, s'), k, n] = Σ_{c of degree n} M[i, s, k, c] M[i, s', k, c]  ->  dE/dM
        gp = grad_features[:, S * nr :].reshape(N, sf.n_pairs, K, -1) @ sf.group.to(dtype).t()
        gm = torch.zeros_like(m)
        gm.index_add_(1, sf.pair_a, gp * m[:, sf.pair_b])
        gm.index_add_(1, sf.pair_b, gp * m[:, sf.pair_a])
        gm = gm.view(N * S, K, C)
        w, parity = sf.mono_weight.to(dtype), sf.parity.to(dtype)
        index, coef = sf.mono_dindex, sf.mono_dcoef.to(dtype)
        pa = ra.shape[0]
        grad_a = torch.empty(pa, 3, dtype=dtype, device=device)
        for a in range(0, pa, chunk):
            b = min(pa, a + chunk)
            ga, mono, u = ga_all[a:b], mono_all[a:b], ua[a:b]
            y = mono * w
            gmp = gm[slot_a[a:b]]  # (c, K, C): dE/dM at the centre's slot
            if half:
                gmp += gm[slot_ab[a:b]] * parity  # and at the neighbour's slot, seen through the reversed u
            dedr_a = ((gmp * y[:, None, :]).sum(2) * dga_all[a:b]).sum(1)
            dedy = (ga[:, :, None] * gmp).sum(1) * w
            dmono = mono[:, index.view(-1)].view(-1, C, 3) * coef
            dedu = (dedy[:, :, None] * dmono).sum(1)
            # u = v / r: dE/dv = dE/dr u + (1 - u u^T) dE/du / r
            grad_a[a:b] = dedr_a[:, None] * u + (dedu - (dedu * u).sum(1, keepdim=True) * u) / ra[a:b, None]
        grad.index_add_(0, sel, grad_a)
        return grad, None, None, None, None, None, None
