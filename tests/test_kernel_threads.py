"""The symmetry-function kernels on several threads (blocks of atoms): same answers as one thread and as the
torch implementation, deterministic, and safe in forked processes and from several Python threads."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest
import torch

from mlpkit.descriptors import kernel_threads as kt
from mlpkit.descriptors.graph import graph_arrays
from mlpkit.descriptors.neighbors import neighbor_list
from mlpkit.descriptors.symmetry import SymmetryFunctions, SymmetryFunctionSettings
from mlpkit.potentials.bpnn import BPNNPotential
from test_kernels import _kernel, _torch_features, _water_box


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 8 atoms, so that small test boxes are split into as many blocks as threads."""
    monkeypatch.setattr(kt, "MIN_ATOMS_PER_BLOCK", 8)


def _sorted_graph(atoms, sf, full=False):
    """Pairs grouped by centre, atoms in space-filling order (as the MD graph), with a 0.4 Å skin."""
    from mlpkit.descriptors.neighbors import spatial_order

    order = spatial_order(atoms.positions, atoms.cell[:], atoms.pbc)
    atoms = atoms[order]
    nl = neighbor_list(atoms, sf.cutoff + 0.4, full=full)
    by_centre = np.argsort(nl.i, kind="stable")
    nl.i, nl.j, nl.shifts = nl.i[by_centre], nl.j[by_centre], nl.shifts[by_centre]
    return graph_arrays(atoms, sf.settings.species, sf.cutoff, nlist=nl)


@pytest.mark.parametrize("settings", [{}, {"angular_order": 5, "n_radial": 24, "width": 0.7}])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_threads_match_torch_and_one_thread(small_blocks, settings, full, threads):
    sf = SymmetryFunctions(SymmetryFunctionSettings(species=("H", "O"), **settings)).double()
    g = _sorted_graph(_water_box(4, seed=11), sf, full=full)
    vectors, ref = _torch_features(sf, g)
    w = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (ref * w).sum().backward()
    grad_v = vectors.grad.numpy()
    ref_forces = np.zeros((len(g.species), 3))
    np.add.at(ref_forces, g.centers, grad_v)
    np.add.at(ref_forces, g.neighbors, -grad_v)
    grad = np.ascontiguousarray(w.numpy())
    topo = kt.pair_topology(g.centers, g.neighbors, len(g.species))
    assert topo.layout(threads).cross.shape[0] > 0  # the blocks really share pairs

    feats, forces, virial = _kernel(sf, g, grad, threads=threads)
    one = _kernel(sf, g, grad, threads=1)
    scale = float(ref.detach().abs().max())
    np.testing.assert_allclose(feats, ref.detach().numpy(), atol=2e-10 * scale, rtol=0)
    # the torch path differentiates the analytic basis, the kernels the Hermite interpolant: O(h^3), as in
    # tests/test_kernels.py (measured here: ~1e-8 of the largest component)
    np.testing.assert_allclose(forces, ref_forces, atol=1e-7 * np.abs(ref_forces).max(), rtol=0)
    np.testing.assert_allclose(virial[0], g.vectors.T @ grad_v, atol=1e-7 * np.abs(virial).max(), rtol=0)
    # against one thread: only the order of a few additions differs
    np.testing.assert_allclose(feats, one[0], atol=1e-13 * scale, rtol=0)
    np.testing.assert_allclose(forces, one[1], atol=1e-12 * np.abs(one[1]).max(), rtol=0)
    np.testing.assert_allclose(virial, one[2], atol=1e-12 * np.abs(one[2]).max(), rtol=0)
    # and the same thread count gives the same bits
    again = _kernel(sf, g, grad, threads=threads)
    for a, b in zip((feats, forces, virial), again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_block_layout_covers_atoms_and_lists_every_crossing_pair(small_blocks):
    sf = SymmetryFunctions(SymmetryFunctionSettings(species=("H", "O"))).double()
    g = _sorted_graph(_water_box(4, seed=12), sf)
    n = len(g.species)
    topo = kt.pair_topology(g.centers, g.neighbors, n)
    assert topo.direct  # pairs grouped by centre: no indirection
    for blocks, with_cross in ((1, False), (2, False), (5, False), (2, True), (5, True)):
        lay = topo.layout(blocks, with_cross=with_cross)
        assert lay.bounds[0] == 0 and lay.bounds[-1] == n and np.all(np.diff(lay.bounds) > 0)
        block = np.searchsorted(lay.bounds, np.arange(n), side="right") - 1
        crossing = np.nonzero(block[g.centers] != block[g.neighbors])[0]
        assert sorted(lay.cross.tolist()) == crossing.tolist()
        for b in range(blocks):  # grouped by the neighbour's block
            mine = lay.cross[lay.cross_start[b] : lay.cross_start[b + 1]]
            assert np.all(block[g.neighbors[mine]] == b)
    # pairs in no particular order: the CSR index is used instead of the pair order
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(g.centers))
    shuffled = kt.pair_topology(g.centers[perm], g.neighbors[perm], n)
    assert not shuffled.direct
    assert np.array_equal(shuffled.own_start, topo.own_start)


def test_potential_follows_torch_thread_count():
    """``predict`` on 1,029 atoms with torch at 1 and at 2 threads: the same energy, forces and stress."""
    atoms = _water_box(7, seed=13)
    pot = BPNNPotential(("H", "O"), hidden=[16, 16], init_seed=5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert kt.kernel_threads() == 1
        one = pot.predict([atoms], stress=True)
        torch.set_num_threads(2)
        assert kt._blocks(len(atoms), kt.kernel_threads()) == 2
        two = pot.predict([atoms], stress=True)
    finally:
        torch.set_num_threads(before)
    assert abs(two.energy[0] - one.energy[0]) <= 1e-12 * abs(one.energy[0])
    np.testing.assert_allclose(two.forces[0], one.forces[0], atol=1e-12 * np.abs(one.forces[0]).max(), rtol=0)
    np.testing.assert_allclose(two.stress, one.stress, atol=1e-12 * np.abs(one.stress).max(), rtol=0)


def _run_ok(code: str, numba_threads: int) -> None:
    """Run ``code`` (TESTS: this folder) in a fresh Python with a numba pool of ``numba_threads`` threads and 2 torch
    threads; it must exit cleanly and print "ok" last (a hang or abort there cannot take the test runner down)."""
    code = code.replace("TESTS", repr(str(Path(__file__).parent)))
    env = {**os.environ, "NUMBA_NUM_THREADS": str(numba_threads), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def test_one_launch_step_equals_separate_launches():
    """On 2 threads the whole evaluation runs in one launch with spin barriers between the stages
    (step_kernels): the separate launches' answer to rounding (float64 and float32 models, 2 and 3 threads) and
    the same bits from call to call, also from three Python threads at once and in a forked child. Not the same
    bits as the separate launches: the block kernels are compiled with fast-math contraction and reassociation,
    so LLVM may round one of them differently inlined into the one launch than into its own launcher (seen once in
    the suite: 1 ulp of the energy, with the one-launch kernel from numba's cache and the others compiled afresh);
    it falls back to the separate launches where the blocks could not all run at once (more blocks than numba
    threads). In a subprocess with a 3-thread numba pool
    (the suite's own pool has one thread: conftest), so a hang or abort cannot take the test runner down."""
    code = textwrap.dedent(
        """
        import multiprocessing, sys, threading, numba, numpy as np, torch
        sys.path.insert(0, TESTS)
        from test_kernels import _water_box
        from mlpkit.potentials.bpnn import BPNNPotential, network
        from mlpkit.descriptors import kernel_threads as kt
        from mlpkit.potentials.bpnn import network_kernels as nk, step_kernels as sk
        from mlpkit.potentials.bpnn.step_kernels import fused_blocks
        atoms = _water_box(7, seed=16)
        for dtype, threads in (("float64", 2), ("float32", 2), ("float64", 3)):
            torch.set_num_threads(threads)
            pot = BPNNPotential(("H", "O"), hidden=[16, 16], init_seed=8, dtype=dtype)
            out = {}
            for fused in (True, False):
                network.FUSED_STEP = fused
                out[fused] = [pot.predict([atoms], stress=True) for _ in range(2)]
            topo = pot._workspace.topology
            assert fused_blocks(topo) == threads and fused_blocks(topo, threads=4) == 0
            # what ran: compiled here or loaded from numba's cache (a stale entry is one way to differ)
            launchers = (sk._step_parallel, kt._features_parallel, nk._networks_parallel, kt._forces_parallel)
            cache = {d.py_func.__name__: (sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))
                     for d in launchers}
            rel = 1e-12 if dtype == "float64" else 2e-5
            for fused in (True, False):  # each path: the same bits on every call
                a, b = out[fused]
                assert a.energy[0] == b.energy[0] and np.array_equal(a.forces[0], b.forces[0]), (dtype, threads, fused)
            for k, (a, b) in enumerate(zip(out[True], out[False])):
                pairs = (("energy", a.energy, b.energy), ("forces", a.forces[0], b.forces[0]),
                         ("stress", a.stress, b.stress))
                diffs = {name: float(np.abs(x - y).max() / np.abs(y).max()) for name, x, y in pairs
                         if np.abs(x - y).max() > rel * np.abs(y).max()}
                assert not diffs, f"{dtype} {threads} threads, call {k}: |fused - separate| / max {diffs}; {cache}"
        network.FUSED_STEP = True
        ref = out[True][0].forces[0]
        # from three Python threads at once (the launch lock serialises them), and in a forked child
        res = [None] * 3
        def work(k):
            res[k] = pot.predict([atoms]).forces[0]
        threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert all(np.array_equal(f, ref) for f in res)
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=lambda q: q.put(pot.predict([atoms]).forces[0]), args=(queue,))
        child.start()
        assert np.array_equal(queue.get(timeout=120), ref)
        child.join(timeout=10)
        assert child.exitcode == 0
        print("ok")
        """
    )
    _run_ok(code, numba_threads=3)


def test_one_potential_predicts_from_several_python_threads_at_once():
    """Three Python threads predicting three different boxes with ONE potential, on 2 kernel threads, through the
    separate launches (whose scratch arrays the potential shares between launches) and the one-launch step: each
    thread gets exactly its box's answer from a serial call (the potential's lock serialises whole predictions).
    In a subprocess with its own 2-thread numba pool."""
    code = textwrap.dedent(
        """
        import sys, threading, numpy as np, torch
        sys.path.insert(0, TESTS)
        from test_kernels import _water_box
        from mlpkit.potentials.bpnn import BPNNPotential, network
        torch.set_num_threads(2)
        boxes = [_water_box(6, seed=s) for s in (1, 2, 3)]
        for fused in (False, True):
            network.FUSED_STEP = fused
            pot = BPNNPotential(("H", "O"), hidden=[16, 16], init_seed=3)
            ref = [pot.predict([b]).forces[0] for b in boxes]
            bad = []
            def work(k):
                for _ in range(6):
                    f = pot.predict([boxes[k]]).forces[0]
                    if not np.array_equal(f, ref[k]):
                        bad.append((k, float(np.abs(f - ref[k]).max())))
            threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            assert not bad, (fused, bad[:3])
        print("ok")
        """
    )
    _run_ok(code, numba_threads=2)


def _child_predict(queue) -> None:
    atoms = _water_box(7, seed=14)
    pot = BPNNPotential(("H", "O"), hidden=[16], init_seed=6)
    out = pot.predict([atoms])
    queue.put((float(out.energy[0]), out.forces[0], kt.kernel_threads(), torch.get_num_threads()))


def test_parallel_kernels_work_in_a_forked_child():
    """The parallel kernels and the networks run in the parent, then in a child forked from it (as
    multiprocessing's 'fork' and fork-based process pools do): same answer, no hang (the child is killed
    after 120 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        atoms = _water_box(7, seed=14)
        pot = BPNNPotential(("H", "O"), hidden=[16], init_seed=6)
        parent = pot.predict([atoms])
        if "NUMBA_THREADING_LAYER" not in os.environ:  # the user's own choice wins
            assert numba.threading_layer() == kt.THREADING_LAYER
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_child_predict, args=(queue,))
        child.start()  # forked while torch is at 2 threads
    finally:
        torch.set_num_threads(before)
    try:
        energy, forces, kernel_threads, torch_threads = queue.get(timeout=120)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    # the kernels keep the parent's threads; torch (GNU OpenMP, not fork-safe) runs on one in the child
    assert (kernel_threads, torch_threads) == (2, 1)
    assert abs(energy - parent.energy[0]) <= 1e-12 * abs(parent.energy[0])
    np.testing.assert_allclose(forces, parent.forces[0], atol=1e-12 * np.abs(forces).max(), rtol=0)


def test_concurrent_callers_from_python_threads_do_not_abort():
    """numba's workqueue layer aborts the process if two threads launch at once; the launch lock serialises
    them (run in a subprocess, so a regression cannot take the test runner down)."""
    code = textwrap.dedent(
        """
        import sys, threading, numpy as np, torch
        sys.path.insert(0, TESTS)
        from test_kernels import _water_box
        from mlpkit.potentials.bpnn import BPNNPotential
        torch.set_num_threads(2)
        atoms = _water_box(7, seed=15)
        pots = [BPNNPotential(("H", "O"), hidden=[16], init_seed=7) for _ in range(3)]
        ref = pots[0].predict([atoms]).forces[0]
        out = [None] * 3
        def work(k):
            for _ in range(3):
                out[k] = pots[k].predict([atoms]).forces[0]
        threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert all(np.allclose(f, ref, rtol=0, atol=1e-12 * np.abs(ref).max()) for f in out)
        print("ok")
        """
    )
    code = code.replace("TESTS", repr(str(Path(__file__).parent)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
