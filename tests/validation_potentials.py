"""Analytic potentials behind the Potential protocol, good and deliberately broken, for the validation tests.

``PairPotential``: Morse pair terms per element pair, smoothly cut off, energies and forces exact and
consistent; radial symmetry functions as its ``descriptors``. The broken ones each violate exactly one
thing the checklist looks for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.neighborlist import neighbor_list

from mlpkit.labelers.base import CalculatorLabeler
from mlpkit.potentials.base import FitHistory, Potential, Prediction
from mlpkit.potentials.registry import register_family
from mlpkit.potentials.store import read_model_json, write_model_dir

#: Morse (D eV, a 1/Å, r0 Å) for a water-like molecule: strong O-H bonds, a weak H-H term sets the angle
WATER_PARAMS = {("H", "O"): (4.0, 2.3, 0.97), ("H", "H"): (0.3, 1.5, 1.55), ("O", "O"): (0.1, 1.5, 3.0)}


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@register_family
class PairPotential(Potential):
    """E = ½ Σ_{i≠j} V_ab(r_ij) f_c(r_ij), Morse V, cosine cutoff f_c (eV, Å)."""

    family = "test-pair"

    def __init__(self, params: dict | None = None, cutoff: float = 5.0, scale: float = 1.0):
        params = WATER_PARAMS if params is None else params
        self.params = {_key(*k): tuple(float(x) for x in v) for k, v in params.items()}
        self.species = tuple(sorted({s for k in self.params for s in k}, key=lambda s: Atoms(s).numbers[0]))
        self.cutoff = float(cutoff)
        self.scale = float(scale)
        self.metadata = {"method": "analytic"}

    # the physics -------------------------------------------------------------------------------------
    def energy_forces(self, atoms: Atoms) -> tuple[float, np.ndarray]:
        i, j, d, vec = neighbor_list("ijdD", atoms, self.cutoff)
        sym = np.array(atoms.get_chemical_symbols())
        table = {k: np.array(v) for k, v in self.params.items()}
        pars = np.array([table[_key(a, b)] for a, b in zip(sym[i], sym[j], strict=True)]).reshape(-1, 3)
        dd, aa, r0 = pars.T
        ex = np.exp(-aa * (d - r0))
        v = dd * ((1 - ex) ** 2 - 1)
        dv = 2 * dd * aa * (1 - ex) * ex
        fc = 0.5 * (np.cos(np.pi * d / self.cutoff) + 1)
        dfc = -0.5 * np.pi / self.cutoff * np.sin(np.pi * d / self.cutoff)
        energy = 0.5 * float(np.sum(v * fc))
        g = (0.5 * (dv * fc + v * dfc) / d)[:, None] * vec  # dE/dr_j of each ordered pair term
        forces = np.zeros((len(atoms), 3))
        np.add.at(forces, i, g)
        np.add.at(forces, j, -g)
        return self.scale * energy, self.scale * forces

    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        self.check_species(images)
        ef = [self.energy_forces(a) for a in images]
        return Prediction(energy=np.array([e for e, _ in ef]), forces=[f for _, f in ef])

    def descriptors(self, images: Sequence[Atoms]) -> list[np.ndarray]:
        """Radial symmetry functions G2 = Σ_j exp(−η r²) f_c(r) per neighbour element, η ∈ {0.5, 1, 2, 4}."""
        etas = np.array([0.5, 1.0, 2.0, 4.0])
        out = []
        for atoms in images:
            i, j, d = neighbor_list("ijd", atoms, self.cutoff)
            fc = 0.5 * (np.cos(np.pi * d / self.cutoff) + 1)
            g = np.zeros((len(atoms), len(self.species), len(etas)))
            zj = np.array([self.species.index(s) for s in np.array(atoms.get_chemical_symbols())[j]], dtype=int)
            np.add.at(g, (i, zj), np.exp(-etas[None, :] * d[:, None] ** 2) * fc[:, None])
            out.append(g.reshape(len(atoms), -1))
        return out

    # protocol plumbing ---------------------------------------------------------------------------------
    def fit(self, train, valid=None, **settings) -> FitHistory:
        return FitHistory(stopped_because="analytic: nothing to fit")

    def save(self, path) -> None:
        write_model_dir(
            path,
            {
                "family": self.family,
                "cutoff": self.cutoff,
                "scale": self.scale,
                "params": [[a, b, *v] for (a, b), v in self.params.items()],
                "species": list(self.species),
            },
        )

    @classmethod
    def load(cls, path) -> PairPotential:
        meta = read_model_json(path)
        return cls({(a, b): tuple(v) for a, b, *v in meta["params"]}, cutoff=meta["cutoff"], scale=meta["scale"])


@register_family
class NotGradientPotential(PairPotential):
    """Forces 1.3x the energy's negative gradient: consistent-looking, but not −dE/dx."""

    family = "test-not-gradient"

    def predict(self, images, *, stress=False):
        p = super().predict(images)
        return Prediction(energy=p.energy, forces=[1.3 * f for f in p.forces])


class ExternalFieldPotential(PairPotential):
    """A constant external field: E += −Σ_i E_field·r_i. Consistent forces, but neither translation nor
    rotation invariant."""

    family = "test-field"
    field = np.array([0.08, -0.05, 0.03])  # eV/Å

    def predict(self, images, *, stress=False):
        p = super().predict(images)
        energy = p.energy - np.array([float(a.positions.sum(axis=0) @ self.field) for a in images])
        return Prediction(energy=energy, forces=[f + self.field for f in p.forces])


class IndexDependentPotential(PairPotential):
    """An extra spring between atoms 0 and 1 only (by index): like atoms are not interchangeable."""

    family = "test-index"

    def predict(self, images, *, stress=False):
        p = super().predict(images)
        energies, forces = [], []
        for a, e, f in zip(images, p.energy, p.forces, strict=True):
            d = a.positions[1] - a.positions[0]
            energies.append(e + 0.5 * float(d @ d))
            f = f.copy()
            f[0] += d
            f[1] -= d
            forces.append(f)
        return Prediction(energy=np.array(energies), forces=forces)


class HeatingPotential(PairPotential):
    """Anti-friction: F += γ m v. Energy and static forces are right, but NVE heats up (γ per fs)."""

    family = "test-heating"
    gamma = 0.002

    def predict(self, images, *, stress=False):
        p = super().predict(images)
        rate = self.gamma / units.fs  # 1/fs in ASE time units
        return Prediction(
            energy=p.energy,
            forces=[
                f + rate * a.get_masses()[:, None] * a.get_velocities() for a, f in zip(images, p.forces, strict=True)
            ],
        )


class RepulsivePotential(PairPotential):
    """The O-H Morse curve upside down (a hill at the bond length): consistent and invariant, but the
    molecule flies apart."""

    family = "test-repulsive"

    def __init__(self, **kw):
        super().__init__(
            {("H", "O"): (-0.2, 1.0, 0.97), ("H", "H"): (0.3, 1.5, 1.55), ("O", "O"): (0.1, 1.5, 3.0)}, **kw
        )


class CommitteePairPotential(PairPotential):
    """Two pair potentials whose spread serves as uncertainty (has_uncertainty=True)."""

    family = "test-committee"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.other = PairPotential({k: (v[0] * 1.05, v[1], v[2]) for k, v in self.params.items()})

    @property
    def has_uncertainty(self) -> bool:
        return True

    def predict(self, images, *, stress=False):
        a, b = super().predict(images), self.other.predict(images)
        return Prediction(
            energy=0.5 * (a.energy + b.energy),
            forces=[0.5 * (f + g) for f, g in zip(a.forces, b.forces, strict=True)],
            energy_std=0.5 * np.abs(a.energy - b.energy),
            forces_std=[0.5 * np.abs(f - g) for f, g in zip(a.forces, b.forces, strict=True)],
        )


class NoDescriptors(PairPotential):
    """The pair potential without ``descriptors``: the extrapolation check's model-agnostic path."""

    family = "test-nodesc"
    descriptors = None  # type: ignore[assignment]


class EMTPotential(Potential):
    """ASE's EMT through the Potential protocol (periodic metals)."""

    family = "test-emt"

    def __init__(self, species=("Cu",)):
        from ase.calculators.emt import EMT

        self.species = tuple(species)
        self.cutoff = 5.0
        self.metadata = {}
        self._calc = EMT()

    def predict(self, images, *, stress=False):
        energies, forces = [], []
        for a in images:
            b = a.copy()
            b.calc = self._calc
            energies.append(b.get_potential_energy())
            forces.append(b.get_forces())
        return Prediction(energy=np.array(energies), forces=forces)

    def fit(self, train, valid=None, **settings):
        return FitHistory()

    def save(self, path):
        write_model_dir(path, {"family": self.family, "species": list(self.species)})

    @classmethod
    def load(cls, path):
        return cls(tuple(read_model_json(path)["species"]))


class PairLabeler(CalculatorLabeler):
    """A 'reference method' made of a PairPotential: used for the frequency comparison in tests."""

    name = "test-pair"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    @property
    def method(self) -> str:
        return f"test:pair*{self.scale:g}"

    def calculator(self):
        return PairPotential(scale=self.scale).calculator()


# -- data ------------------------------------------------------------------------------------------------


def label(images: Sequence[Atoms], potential: Potential, method: str) -> list[Atoms]:
    """Attach the potential's energy/forces as reference labels (SinglePointCalculator + info["method"])."""
    pred = potential.predict(images)
    out = []
    for a, e, f in zip(images, pred.energy, pred.forces, strict=True):
        b = a.copy()
        b.calc = SinglePointCalculator(b, energy=float(e), forces=np.array(f))
        b.info["method"] = method
        out.append(b)
    return out


def water_data(n: int, stdev: float, seed: int, reference: Potential | None = None) -> list[Atoms]:
    """``n`` rattled water molecules in a vacuum box labelled by ``reference`` (the pair potential ×1.001 by
    default, so a PairPotential model has small, non-zero errors)."""
    base = molecule("H2O")
    base.center(vacuum=4.0)
    base.pbc = False
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        a = base.copy()
        a.positions += rng.normal(0, stdev, a.positions.shape)
        images.append(a)
    ref = reference if reference is not None else PairPotential(scale=1.001)
    return label(images, ref, "test:pair*1.001")


def copper_data(n: int, stdev: float, seed: int) -> list[Atoms]:
    """Rattled 2x2x2 fcc Cu supercells (32 atoms, periodic) labelled with EMT."""
    base = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        a = base.copy()
        a.positions += rng.normal(0, stdev, a.positions.shape)
        images.append(a)
    return label(images, EMTPotential(), "emt")
