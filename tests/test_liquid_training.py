"""Stress in the fit on liquid-water boxes: GFN2-xTB labels of 8-molecule boxes at six densities carry stress; a
linear family (MTP) fitted with stress rows and a BPNN trained with stress in the loss reproduce it better than the
same fits without; families that cannot fit stress refuse a stress weight."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from mlpkit.data import molecular_box


@pytest.fixture(scope="module")
def labelled_boxes():
    pytest.importorskip("tblite")
    from mlpkit.labelers import make_labeler

    labeler = make_labeler("gfn2")
    out = []
    for k, density in enumerate((0.92, 0.96, 1.0, 1.04, 1.08, 1.12)):
        box = molecular_box("H2O", 8, density=density, seed=k)
        label = labeler.label(box)
        box.calc = SinglePointCalculator(box, energy=label.energy, forces=label.forces, stress=label.stress)
        out.append(box)
    return out


def test_the_stress_rows_make_the_fitted_stress_closer(labelled_boxes):
    from mlpkit.potentials import create_potential

    ref = np.array([a.get_stress(voigt=True) for a in labelled_boxes])
    assert np.ptp(ref[:, :3].mean(axis=1)) > 1e-3  # eV/Å³: the densities span > 1.6 kbar of pressure
    errors = {}
    for weight in (0.0, 10.0):
        pot = create_potential("mtp", labelled_boxes, cutoff=4.0, level=8)
        pot.fit(labelled_boxes, stress_weight=weight, active_set=False)
        pred = pot.predict(labelled_boxes, stress=True).stress
        errors[weight] = float(np.sqrt(np.mean((pred - ref) ** 2)))
    # weighted least squares: giving the stress block weight cannot raise its residual; here it drops a lot
    assert errors[10.0] < 0.5 * errors[0.0], errors


def test_energy_force_loss_adds_the_weighted_stress_mse():
    import torch

    from mlpkit.training import energy_force_loss, summarize

    e, e_ref, n = torch.tensor([1.0, 2.0]), torch.tensor([1.1, 2.0]), torch.tensor([2, 4])
    f = torch.zeros(6, 3)
    s = torch.full((1, 6), 2e-3, requires_grad=True)
    s_ref = torch.full((1, 6), 1e-3)
    loss, stats = energy_force_loss(e, e_ref, n, f, f, 1.0, s, s_ref, stress_weight=100.0)
    e_mse = (0.1 / 2) ** 2 / 2
    assert float(loss.detach()) == pytest.approx(e_mse + 100.0 * 1e-6)
    loss.backward()
    assert s.grad is not None and torch.all(s.grad > 0)
    summary = summarize([stats], 1.0, 100.0)
    assert summary["stress_rmse"] == pytest.approx(1e-3) and summary["loss"] == pytest.approx(float(loss.detach()))
    _, no_stress = energy_force_loss(e, e_ref, n, f, f, 1.0)
    assert "stress_rmse" not in summarize([no_stress], 1.0, 100.0)


def test_bpnn_learns_the_stress_when_weighted(labelled_boxes):
    """The same BPNN, seed and epochs on the six boxes: with stress in the loss the fitted stress is closer."""
    from mlpkit.potentials import create_potential

    ref = np.array([a.get_stress(voigt=True) for a in labelled_boxes])
    errors = {}
    for weight in (0.0, 1000.0):
        pot = create_potential("bpnn", labelled_boxes, cutoff=4.0, hidden=[8], n_radial=6, n_angular=0, dtype="float64")
        pot.fit(labelled_boxes, stress_weight=weight, epochs=60, batch_size=3, valid_fraction=0.0, progress=False)
        pred = pot.predict(labelled_boxes, stress=True).stress
        errors[weight] = float(np.sqrt(np.mean((pred - ref) ** 2)))
    assert errors[1000.0] < 0.7 * errors[0.0], errors


def test_families_that_cannot_fit_stress_refuse_the_weight():
    """MACE trains with the same trainer but no stress term yet: a stress weight is refused, not ignored."""
    pytest.importorskip("mace")
    from mlpkit.errors import InputError
    from mlpkit.potentials.mace import MACEPotential
    from mlpkit.testing.data import labelled_water

    with pytest.raises(InputError, match="does not fit stress"):
        MACEPotential(["H", "O"]).fit(labelled_water(4), stress_weight=1.0, epochs=1, progress=False)
