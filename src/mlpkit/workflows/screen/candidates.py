"""Inputs of ``mlpkit screen``: candidate structures, elemental references, and the score a candidate is ranked by.

Scores are ranked ascending (lowest first, like energies). A score is ``energy_per_atom``, ``formation`` (formation
energy per atom against elemental references) or an arithmetic expression over the quantities of a candidate
(:data:`QUANTITIES`, plus the numeric info keys of its structure file), e.g. ``"formation_energy_per_atom -
0.1*n_atoms"``. Expressions are parsed with :mod:`ast` and evaluated node by node: numbers, names, ``+ - * /`` and
parentheses only; nothing is ever handed to ``eval``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.data.hashing import configuration_hash
from mlpkit.data.structures import read_structures
from mlpkit.errors import InputError

#: quantities every candidate has once its model energy is known (formation_energy_per_atom: with references)
QUANTITIES = {
    "energy": "total energy (eV)",
    "energy_per_atom": "energy per atom (eV/atom)",
    "formation_energy_per_atom": "formation energy per atom against the elemental references (eV/atom)",
    "n_atoms": "number of atoms",
    "volume_per_atom": "cell volume per atom (Å³/atom; periodic structures only)",
}
SCORE_ALIASES = {"energy_per_atom": "energy_per_atom", "formation": "formation_energy_per_atom"}


@dataclass
class Candidate:
    """One structure to screen: a name (file[#frame]), its content hash, and the structure as read."""

    name: str
    hash: str
    atoms: Atoms
    info: dict[str, float] = field(default_factory=dict)

    @property
    def formula(self) -> str:
        return self.atoms.get_chemical_formula()


def _numeric_info(atoms: Atoms) -> dict[str, float]:
    return {
        str(k): float(v)
        for k, v in atoms.info.items()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and str(k).isidentifier()
    }


def read_candidates(source: str | Path) -> tuple[list[Candidate], list[str]]:
    """The candidates of a structure file or of every file ASE reads in a directory (sorted by name), and the
    notes on what was skipped (unreadable files, duplicate structures)."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"candidates {path} do not exist (give a structure file or a directory of them)")
    notes: list[str] = []
    found: list[tuple[str, Atoms]] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        for f in files:
            try:
                images = read_structures(f)
            except InputError as exc:
                notes.append(f"skipped {f.name}: {exc}")
                continue
            found += [(f.name if len(images) == 1 else f"{f.name}#{i}", a) for i, a in enumerate(images)]
        if not found:
            raise InputError(
                f"{path} holds no structure file ASE can read ({len(files)} file(s)"
                + (f"; {notes[0]}" if notes else "")
                + ")"
            )
    else:
        images = read_structures(path)
        found = [(path.name if len(images) == 1 else f"{path.name}#{i}", a) for i, a in enumerate(images)]
    out: list[Candidate] = []
    seen: dict[str, str] = {}
    for name, atoms in found:
        h = configuration_hash(atoms)
        if h in seen:
            notes.append(f"skipped {name}: the same structure as {seen[h]}")
            continue
        seen[h] = name
        out.append(Candidate(name=name, hash=h, atoms=atoms, info=_numeric_info(atoms)))
    return out, notes


def parse_references(text: str | None) -> dict[str, float] | None:
    """``"H=-13.6,O=-2041"`` (eV per atom of the element) → {"H": -13.6, "O": -2041.0}; None for None."""
    if text is None or not str(text).strip():
        return None
    refs: dict[str, float] = {}
    for item in str(text).split(","):
        symbol, sep, value = item.strip().partition("=")
        try:
            if not sep:
                raise ValueError
            refs[symbol.strip()] = float(value)
        except ValueError:
            raise InputError(
                f"--references must look like 'H=-13.6,O=-2041.2' (eV/atom), or name a file/directory of elemental "
                f"structures; got {item.strip()!r}"
            ) from None
    return refs


def elemental_energies(energies: Sequence[tuple[Atoms, float]]) -> dict[str, float]:
    """Per element, the lowest energy per atom among the single-element structures given with their energies."""
    refs: dict[str, float] = {}
    for atoms, energy in energies:
        symbols = set(atoms.get_chemical_symbols())
        if len(symbols) != 1:
            raise InputError(
                f"a reference structure must hold one element, {atoms.get_chemical_formula()} holds {len(symbols)}"
            )
        (symbol,) = symbols
        refs[symbol] = min(refs.get(symbol, math.inf), energy / len(atoms))
    return refs


def quantities(atoms: Atoms, energy: float, info: Mapping[str, float], refs: Mapping[str, float] | None) -> dict:
    """Every named quantity of a candidate with total ``energy`` (eV)."""
    n = len(atoms)
    q = {**info, "energy": float(energy), "energy_per_atom": float(energy) / n, "n_atoms": float(n)}
    if atoms.pbc.all():
        q["volume_per_atom"] = float(atoms.get_volume()) / n
    if refs is not None:
        missing = sorted(set(atoms.get_chemical_symbols()) - set(refs))
        if not missing:
            q["formation_energy_per_atom"] = (float(energy) - sum(refs[s] for s in atoms.get_chemical_symbols())) / n
    return q


_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: a / b if b != 0 else math.nan,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class Score:
    """A ranking score: ``energy_per_atom``, ``formation``, or a safe arithmetic expression over quantity names."""

    def __init__(self, text: str):
        self.text = str(text).strip()
        if not self.text:
            raise InputError("--score is empty")
        expr = SCORE_ALIASES.get(self.text, self.text)
        try:
            self._tree = ast.parse(expr, mode="eval").body
        except SyntaxError as exc:
            raise InputError(f"--score {self.text!r} is not a valid expression: {exc.msg}") from None
        self.names = sorted(self._check(self._tree))

    def _check(self, node: ast.AST) -> set[str]:
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._check(node.left) | self._check(node.right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return self._check(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return set()
        if isinstance(node, ast.Name):
            return {node.id}
        raise InputError(
            f"--score {self.text!r}: only numbers, quantity names, + - * / and parentheses are allowed "
            f"(found {type(node).__name__})"
        )

    def check_names(self, available: set[str], needs_references: bool = False) -> None:
        """Refuse a score naming a quantity the candidates do not have, listing those they do."""
        unknown = [n for n in self.names if n not in available]
        if not unknown:
            return
        if "formation_energy_per_atom" in unknown and needs_references:
            raise InputError(
                f"--score {self.text!r} needs elemental reference energies for every element of the candidates: "
                "give --references 'H=-13.6,O=-2041' (eV/atom) or a file/directory of elemental structures"
            )
        raise InputError(
            f"--score {self.text!r}: unknown quantity {', '.join(map(repr, unknown))}; "
            f"choose from: {', '.join(sorted(available))} (or 'energy_per_atom', 'formation')"
        )

    def __call__(self, values: Mapping[str, float]) -> float:
        def ev(node: ast.AST) -> float:
            if isinstance(node, ast.BinOp):
                return _BINARY[type(node.op)](ev(node.left), ev(node.right))
            if isinstance(node, ast.UnaryOp):
                return _UNARY[type(node.op)](ev(node.operand))
            if isinstance(node, ast.Constant):
                return float(node.value)
            assert isinstance(node, ast.Name)
            return float(values.get(node.id, math.nan))

        value = ev(self._tree)
        return value if math.isfinite(value) else math.nan

    def __repr__(self) -> str:
        return f"Score({self.text!r})"


def rank(scores: Mapping[str, float]) -> list[str]:
    """Keys ordered by ascending score, NaN last, ties by key (deterministic)."""
    return sorted(scores, key=lambda k: (not math.isfinite(scores[k]), scores[k] if math.isfinite(scores[k]) else 0, k))
