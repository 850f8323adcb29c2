"""Periodic boxes of molecules at a given density (a liquid's start structure), and the ``NAME-box:N[@density]`` spec.

Placement: the ``n`` molecular centres go on ``n`` sites of a lattice that fills the cell (chosen at random when the
lattice has more sites than molecules, so any ``n`` works, not only ``k³``), jittered, each molecule rotated at random.
Molecules that bring an atom closer than ``min_distance`` to an atom of another molecule (or to a periodic image of
itself) get a new random orientation, and after 20 unsuccessful ones a new centre (an empty site, or a wider jitter).
What reorientation does not resolve in ``reorient_rounds`` rounds (dense, anisotropic molecules such as DMSO) is
relaxed like packmol does: steepest descent of the overlap penalty, moving and turning whole molecules. The clash test
is one vesin neighbour list per round over the whole box (no Python loop over atoms or pairs). Everything draws from
one seeded generator, so a spec and a seed give the same box every time.

Packmol (PyPI ``packmol`` 21.2.3, Debian ``packmol``) solves the same problem by optimisation and is the tool to use for
mixtures and interfaces; it is not installed here and ASE has no packer, so mlpkit carries this short version for the
single-component liquids it needs (no new dependency, deterministic, vectorised).
"""

from __future__ import annotations

import re

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError

AVOGADRO = 6.02214076e23  # 1/mol
#: 1 g/cm³ → amu/Å³ (the box volume in Å³ is mass in amu / (density · this))
G_PER_CM3_IN_AMU_PER_A3 = AVOGADRO * 1e-24

#: Liquid densities (g/cm³) at 20-25 °C and 1 atm of the G2 molecules a ``NAME-box:N`` spec may leave the density out
#: for (CRC Handbook). Water is the conventional 1.0 of condensed-phase benchmarks (0.997 at 25 °C).
LIQUID_DENSITY: dict[str, float] = {
    "H2O": 1.0,
    "CH3OH": 0.792,
    "CH3CH2OH": 0.789,
    "CH3CN": 0.786,
    "CH3COCH3": 0.784,
    "C6H6": 0.876,
    "CCl4": 1.594,
    "HCOOH": 1.220,
    "CH3COOH": 1.049,
    "C2H6SO": 1.100,
}

#: ``NAME-box:N`` or ``NAME-box:N@DENSITY``; ``water`` is accepted for ``H2O``
_BOX_SPEC = re.compile(r"^(?P<name>[^@:/\\]+)-box:(?P<n>[0-9]+)(?:@(?P<density>[^@]+))?$")
_ALIASES = {"water": "H2O", "methanol": "CH3OH", "ethanol": "CH3CH2OH", "benzene": "C6H6", "acetonitrile": "CH3CN"}


def is_box_spec(text: str) -> bool:
    """Whether ``text`` has the form of a box spec (``water-box:32``, ``CH3OH-box:20@0.79``), valid or not."""
    return _BOX_SPEC.match(str(text).strip()) is not None


def parse_box_spec(text: str) -> tuple[str, int, float]:
    """``NAME-box:N[@DENSITY]`` → (G2 molecule name, number of molecules, density in g/cm³).

    The density defaults to :data:`LIQUID_DENSITY` of the molecule. Raises :class:`InputError` with the reason.
    """
    from ase.collections import g2

    m = _BOX_SPEC.match(str(text).strip())
    if m is None:
        raise InputError(
            f"{text!r} is not a box spec; write NAME-box:N or NAME-box:N@DENSITY (g/cm³), e.g. water-box:32"
        )
    name = _ALIASES.get(m["name"], m["name"])
    if name not in g2.names:
        raise InputError(f"{text!r}: {m['name']!r} is not an ASE molecule name (ase.collections.g2.names) or 'water'")
    n = int(m["n"])
    if n < 1:
        raise InputError(f"{text!r}: a box needs at least one molecule")
    if m["density"] is None:
        if name not in LIQUID_DENSITY:
            raise InputError(
                f"{text!r}: no known liquid density for {name}; give one in g/cm³: {m['name']}-box:{n}@0.8"
            )
        return name, n, LIQUID_DENSITY[name]
    try:
        density = float(m["density"])
    except ValueError:
        raise InputError(f"{text!r}: density {m['density']!r} is not a number (g/cm³)") from None
    if not np.isfinite(density) or density <= 0:
        raise InputError(f"{text!r}: density must be a positive number of g/cm³, got {m['density']}")
    return name, n, density


def box_from_spec(text: str, *, seed: int = 0) -> Atoms:
    """The periodic box a ``NAME-box:N[@DENSITY]`` spec describes (see :func:`molecular_box`)."""
    name, n, density = parse_box_spec(text)
    atoms = molecular_box(name, n, density=density, seed=seed)
    atoms.info["source"] = str(text).strip()
    return atoms


def box_length(molecule: Atoms, n: int, density: float) -> float:
    """Å: edge of the cube holding ``n`` copies of ``molecule`` at ``density`` g/cm³."""
    mass = float(molecule.get_masses().sum()) * n  # amu
    return (mass / (density * G_PER_CM3_IN_AMU_PER_A3)) ** (1 / 3)


def density_of(atoms: Atoms) -> float:
    """g/cm³ of a periodic cell."""
    return float(atoms.get_masses().sum()) / (atoms.get_volume() * G_PER_CM3_IN_AMU_PER_A3)


def molecular_box(
    molecule: str | Atoms,
    n: int,
    *,
    density: float | None = None,
    cell: np.ndarray | list | None = None,
    min_distance: float = 1.6,
    jitter: float = 0.15,
    seed: int = 0,
    max_rounds: int = 2000,
    reorient_rounds: int = 100,
) -> Atoms:
    """``n`` rigid copies of ``molecule`` (a G2 name or an Atoms) in a periodic cell, without overlaps.

    density:      g/cm³; the cell is then a cube of the matching edge. Give either this or ``cell``.
    cell:         (3,) edge lengths or (3, 3) cell vectors, Å (the density follows from it)
    min_distance: Å, smallest allowed distance between atoms of different molecules, periodic images included (1.6 Å
                  lets water's hydrogen bonds, ~1.7-2.0 Å, form; the start of MD, not a relaxed liquid)
    jitter:       Å, largest random displacement of a centre from its lattice site
    seed:         seed of every random draw (sites, jitter, orientations)
    max_rounds:   clash checks at most (one neighbour list each)
    reorient_rounds: of these, the first ones only turn (and now and then move) the clashing molecules at random;
                  the rest push and turn whole molecules down the overlap penalty (needed for dense, anisotropic ones)

    Returns an Atoms with ``pbc=True``, positions wrapped into the cell, and ``info["density"]`` (g/cm³),
    ``info["n_molecules"]``; ``arrays["mol-id"]`` (n_atoms,) numbers the molecules. Raises :class:`InputError` if no
    placement is found (density too high for ``min_distance``, or a molecule longer than the cell).
    """
    from scipy.spatial.transform import Rotation
    from vesin import NeighborList

    mol = _monomer(molecule)
    if n < 1:
        raise InputError(f"a box needs at least one molecule, got n={n}")
    if (density is None) == (cell is None):
        raise InputError("give exactly one of density (g/cm³) and cell (Å)")
    if density is not None:
        if not density > 0:
            raise InputError(f"density must be > 0 g/cm³, got {density}")
        box = np.eye(3) * box_length(mol, n, density)
    else:
        box = np.asarray(cell, dtype=float)
        box = np.diag(box) if box.shape == (3,) else box
        if box.shape != (3, 3) or abs(np.linalg.det(box)) < 1e-6:
            raise InputError(f"cell must be 3 edge lengths or a non-singular 3x3 matrix (Å), got {cell!r}")
    if min_distance <= 0 or jitter < 0:
        raise InputError(f"need min_distance > 0 Å and jitter >= 0 Å, got {min_distance}, {jitter}")

    rng = np.random.default_rng(seed)
    shape = _lattice_shape(box, n)
    grid = np.stack(np.meshgrid(*(np.arange(k) for k in shape), indexing="ij"), axis=-1).reshape(-1, 3)
    sites = ((grid + 0.5) / np.asarray(shape)) @ box  # (n_sites, 3) Å
    # all sites when the lattice fits exactly (no draw, so n = k³ reproduces the earlier lattice boxes)
    taken = np.arange(len(sites)) if len(sites) == n else np.sort(rng.choice(len(sites), size=n, replace=False))
    free = np.setdiff1d(np.arange(len(sites)), taken)
    centres = sites[taken] + rng.uniform(-jitter, jitter, size=(n, 3))
    reference = mol.positions  # (m, 3), centre of mass at the origin
    rotations = Rotation.random(n, random_state=rng).as_matrix()  # (n, 3, 3)
    n_per = len(mol)
    molecule_id = np.repeat(np.arange(n), n_per)
    nl = NeighborList(cutoff=min_distance, full_list=False)
    tries = np.zeros(n, dtype=int)  # orientations tried at the current centre, per molecule
    for rounds in range(max_rounds):
        body = np.einsum("mij,aj->mai", rotations, reference)  # (n, m, 3) atoms relative to their centre
        positions = (centres[:, None, :] + body).reshape(-1, 3)
        i, j, shift, d, vec = nl.compute(positions, box, periodic=True, quantities="ijSdD")
        clash = (molecule_id[i] != molecule_id[j]) | np.any(shift != 0, axis=1)
        if not clash.any():
            break
        if rounds < reorient_rounds:
            # one molecule of each clashing pair turns (all of a molecule clashing with its own image)
            bad = np.unique(molecule_id[i[clash]])
            rotations[bad] = Rotation.random(len(bad), random_state=rng).as_matrix()
            tries[bad] += 1
            stuck = bad[tries[bad] >= 20]
            if len(stuck):
                tries[stuck] = 0
                _move(stuck, centres, taken, free, sites, rng, jitter, box)
        else:
            _relax(centres, rotations, body, molecule_id, i[clash], j[clash], d[clash], vec[clash], 1.1 * min_distance)
    else:
        raise InputError(
            f"could not place {n} {mol.get_chemical_formula()} in a cell of {abs(np.linalg.det(box)):.1f} Å³ with no "
            f"intermolecular contact under {min_distance} Å ({max_rounds} rounds): lower the density or min_distance"
        )
    atoms = Atoms(np.tile(mol.numbers, n), positions=positions, cell=box, pbc=True)
    atoms.wrap()
    atoms.arrays["mol-id"] = molecule_id
    atoms.info.update(density=density_of(atoms), n_molecules=int(n))
    return atoms


def _monomer(molecule: str | Atoms) -> Atoms:
    """The molecule with its centre of mass at the origin, no cell (a G2 name or a copy of an Atoms)."""
    if isinstance(molecule, str):
        from ase.build import molecule as g2_molecule
        from ase.collections import g2

        name = _ALIASES.get(molecule, molecule)
        if name not in g2.names:
            raise InputError(f"{molecule!r} is not an ASE molecule name (ase.collections.g2.names)")
        mol = g2_molecule(name)
    elif isinstance(molecule, Atoms):
        mol = Atoms(molecule.numbers, positions=molecule.positions, masses=molecule.get_masses())
    else:
        raise InputError(f"molecule must be an ASE molecule name or an Atoms, got {type(molecule).__name__}")
    if len(mol) == 0:
        raise InputError("the molecule has no atoms")
    mol.positions -= mol.get_center_of_mass()
    return mol


def _lattice_shape(box: np.ndarray, n: int) -> tuple[int, int, int]:
    """Sites per cell vector (k1, k2, k3) with k1 k2 k3 >= n and spacings as even as the cell allows."""
    lengths = np.linalg.norm(box, axis=1)
    per_length = (n / abs(np.linalg.det(box))) ** (1 / 3)
    k = np.maximum(1, np.floor(lengths * per_length + 1e-9)).astype(int)
    while np.prod(k) < n:
        k[np.argmax(lengths / k)] += 1  # refine the direction with the widest spacing
    return int(k[0]), int(k[1]), int(k[2])


def _relax(centres, rotations, body, molecule_id, i, j, d, vec, target) -> None:
    """One steepest-descent step of the overlap penalty sum((target - d)²) over close intermolecular pairs, moving
    and turning whole molecules (centres (n, 3) Å and rotations (n, 3, 3) are updated in place).

    body: (n, m, 3) Å, atoms relative to their molecule's centre; i, j: (p,) atoms of the close pairs, d (p,) Å their
    distance, vec (p, 3) Å the vector from i to j (minimum image).
    """
    from scipy.spatial.transform import Rotation

    n, m = body.shape[:2]
    push = (target - d)[:, None] * vec / np.maximum(d, 1e-6)[:, None]  # (p, 3): moves i away from j
    force = np.zeros((n * m, 3))
    np.add.at(force, i, -push)
    np.add.at(force, j, push)
    force = force.reshape(n, m, 3)
    net = force.sum(axis=1)  # (n, 3)
    torque = np.cross(body, force).sum(axis=1)  # (n, 3)
    inertia = (body**2).sum(axis=(1, 2)) + 1e-3  # Å², a scalar moment per molecule
    step = 0.5 / m  # Å per Å of overlap, shared by a molecule's m atoms
    centres += np.clip(step * net, -0.3, 0.3)
    angle = np.clip(torque / inertia[:, None], -0.3, 0.3)  # rad
    rotations[:] = Rotation.from_rotvec(angle).as_matrix() @ rotations


def _move(stuck, centres, taken, free, sites, rng, jitter, box) -> None:
    """New centres for molecules no orientation fits: an empty lattice site if any, else a wider jitter."""
    for m in stuck:  # few molecules, rarely: a loop over the stuck ones, not over atoms or pairs
        if len(free):
            k = rng.integers(len(free))
            free[k], taken[m] = taken[m], free[k]
            centres[m] = sites[taken[m]] + rng.uniform(-jitter, jitter, size=3)
        else:
            spacing = abs(np.linalg.det(box)) ** (1 / 3) / max(len(taken), 1) ** (1 / 3)
            centres[m] = sites[taken[m]] + rng.uniform(-0.25, 0.25, size=3) * spacing
