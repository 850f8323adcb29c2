"""The dataset store: one row per configuration in an ASE database (SQLite file or PostgreSQL URL).

Each row carries the atoms and, once labelled, the reference energy (eV), forces (eV/Å) and stress
(eV/Å³, Voigt order xx yy zz yz xz xy, ASE's sign convention) plus these key-value pairs:

``status``   ``pending`` | ``labelled`` | ``failed``
``method``   level of theory, e.g. ``pyscf:PBE/def2-SVP``; data of different methods never mix silently
``source``   where the configuration came from (``md-500K``, ``rattle``, ``al-iter-3``, ...)
``hash``     content hash of numbers+positions+cell+pbc; (hash, method) is unique, so adding or
             labelling the same configuration twice is a no-op
``seconds``  wall time of the reference calculation
``error``    the reason a calculation failed
``split``    ``train`` | ``valid`` | ``test`` once assigned

Every write is one SQLite/PostgreSQL transaction holding the store's write lock: a killed process leaves either
the old row or the new one, and any number of processes (Dask workers, two ``mlpkit label`` runs) may write at once.

A label is :class:`mlpkit.data.labels.Label`; splitting lists of configurations is :mod:`mlpkit.data.split`. Both are
re-exported here.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.data.hashing import configuration_hash
from mlpkit.data.labels import Label, label_from_atoms, single_point
from mlpkit.data.split import holdout, split_images
from mlpkit.errors import InputError, MissingDependencyError, MixedMethodError

STATUSES = ("pending", "labelled", "failed")
SPLITS = ("train", "valid", "test")

__all__ = ["SPLITS", "STATUSES", "AddReport", "Dataset", "Label", "holdout", "split_images"]


@dataclass(frozen=True)
class AddReport:
    """What :meth:`Dataset.add` did: rows written and configurations skipped as duplicates."""

    added: int
    duplicates: int
    ids: tuple[int, ...]


def _is_url(url: str) -> bool:
    return "://" in url


class Dataset:
    """A store of configurations and their reference labels, on ASE's database.

    Parameters
    ----------
    url:
        Path of an SQLite file (``water.db``; created if missing, its directory must exist) or a
        ``postgresql://user:password@host:port/dbname`` URL.
    """

    def __init__(self, url: str | os.PathLike):
        from ase.db import connect

        url = str(url)
        if not _is_url(url):
            path = Path(url)
            if path.suffix not in (".db", ".sqlite", ".sqlite3"):
                raise InputError(f"database path {path} should end in .db (an SQLite file) or be a postgresql:// URL")
            if not path.parent.exists():
                raise InputError(f"directory {path.parent} of database {path} does not exist")
            if path.exists() and path.is_dir():
                raise InputError(f"database path {path} is a directory")
            url = str(path)
        self.url = url
        try:
            if url.startswith(("postgresql://", "postgres://")):
                self._db = _postgres_database(url)
            else:
                self._db = connect(url, type="db")
        except MissingDependencyError:
            raise
        except Exception as exc:
            raise InputError(f"cannot open database {url}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Dataset({self.url!r})"

    def __len__(self) -> int:
        return self._db.count()

    # -- writing ---------------------------------------------------------------------------------------

    def add(
        self,
        images: Iterable[Atoms],
        *,
        method: str,
        source: str,
        labelled: bool = False,
        split: str | None = None,
    ) -> AddReport:
        """Add configurations, skipping any whose (hash, method) is already stored.

        With ``labelled=True`` each Atoms must carry a calculator with energy and forces (as read from
        an extxyz file); they are stored as ``labelled`` after the same finiteness checks a fresh label gets.
        Otherwise rows are ``pending`` for ``method``.
        """
        if not method:
            raise InputError("a method (level of theory) is required for every row")
        if split is not None and split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, not {split!r}")
        added, dupes, ids = 0, 0, []
        with self._exclusive():
            # read inside the lock: another process adding the same configurations waits for this one
            known = self._hashes(method)
            for atoms in images:
                h = configuration_hash(atoms)
                if h in known:
                    dupes += 1
                    continue
                kvp = {"status": "pending", "method": method, "source": source, "hash": h}
                if split:
                    kvp["split"] = split
                clean = _bare(atoms)
                if labelled:
                    label = label_from_atoms(atoms)
                    label.validate(len(atoms))
                    clean.calc = single_point(clean, label)
                    kvp.update(status="labelled", seconds=float(label.seconds))
                ids.append(self._db.write(clean, key_value_pairs=kvp, data=_extra_info(atoms)))
                known.add(h)
                added += 1
        return AddReport(added=added, duplicates=dupes, ids=tuple(ids))

    def record_label(self, row_id: int, label: Label) -> None:
        """Store a finished reference calculation on a pending row (one transaction)."""
        row = self._db.get(id=row_id)
        label.validate(row.natoms)
        atoms = row.toatoms()
        atoms.calc = single_point(atoms, label)
        with self._exclusive():
            self._db.update(row_id, atoms=atoms, delete_keys=["error"], status="labelled", seconds=float(label.seconds))

    def record_failure(self, row_id: int, error: str, seconds: float = 0.0) -> None:
        """Mark a row ``failed`` with the reason; its atoms stay, no energy or forces are stored."""
        with self._exclusive():
            self._db.update(row_id, status="failed", error=str(error)[:4000] or "unknown error", seconds=float(seconds))

    def reset_failed(self, method: str | None = None) -> int:
        """Turn ``failed`` rows back into ``pending`` (e.g. after fixing the method's settings)."""
        n = 0
        with self._exclusive():
            for row in self._db.select(sort="id", **self._filters(status="failed", method=method)):
                self._db.update(row.id, delete_keys=["error"], status="pending")
                n += 1
        return n

    def assign_splits(
        self,
        fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        method: str | None = None,
        overwrite: bool = False,
    ) -> Counter:
        """Tag labelled rows ``train``/``valid``/``test`` at random (seeded) in the given proportions."""
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
            raise InputError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
        rows = [
            r
            for r in self._db.select(sort="id", **self._filters(status="labelled", method=method))
            if overwrite or not r.get("split")
        ]
        ids = np.array([r.id for r in rows], dtype=int)
        rng = np.random.default_rng(seed)
        rng.shuffle(ids)
        n_train = round(fractions[0] * len(ids))
        n_valid = round(fractions[1] * len(ids))
        counts: Counter = Counter()
        with self._exclusive():
            for i, row_id in enumerate(ids):
                split = "train" if i < n_train else "valid" if i < n_train + n_valid else "test"
                self._db.update(int(row_id), split=split)
                counts[split] += 1
        return counts

    # -- reading ---------------------------------------------------------------------------------------

    def rows(self, **filters) -> Iterator:
        """ASE database rows matching key-value ``filters`` (``status=``, ``method=``, ``source=``, ``split=``),
        in id (insertion) order on both backends."""
        return self._db.select(sort="id", **self._filters(**filters))

    def count(self, **filters) -> int:
        return self._db.count(**self._filters(**filters))

    def pending(self, method: str) -> list[tuple[int, Atoms]]:
        """(row id, atoms) of every configuration still waiting for a ``method`` label."""
        return [(row.id, row.toatoms()) for row in self._db.select(sort="id", status="pending", method=method)]

    def methods(self, status: str | None = "labelled") -> list[str]:
        return sorted({row.method for row in self._db.select(sort="id", **self._filters(status=status))})

    def get_atoms(self, row_id: int) -> Atoms:
        return _row_to_atoms(self._db.get(id=row_id))

    def to_atoms(
        self,
        *,
        method: str | None = None,
        split: str | None = None,
        source: str | None = None,
        status: str = "labelled",
        allow_mixed_methods: bool = False,
    ) -> list[Atoms]:
        """Configurations as Atoms, labelled ones with a SinglePointCalculator holding energy/forces/stress.

        Refuses (:class:`MixedMethodError`) to return labelled data of more than one method unless
        ``allow_mixed_methods=True`` or a single ``method`` is named.
        """
        rows = list(
            self._db.select(sort="id", **self._filters(status=status, method=method, split=split, source=source))
        )
        found = sorted({r.method for r in rows})
        if status == "labelled" and len(found) > 1 and not allow_mixed_methods:
            raise MixedMethodError(
                f"{self.url} holds labels from {len(found)} methods ({', '.join(found)}); name one with "
                "method=... (--method), or pass allow_mixed_methods=True (--allow-mixed-methods) if you mean it"
            )
        return [_row_to_atoms(r) for r in rows]

    def summary(self) -> dict:
        """Counts by status, method and source, plus label time: a plain dict for printing or JSON."""
        by_status: Counter = Counter()
        by_method: dict[str, Counter] = {}
        by_source: Counter = Counter()
        seconds = 0.0
        n_atoms = 0
        errors: Counter = Counter()
        for row in self._db.select(sort="id"):
            by_status[row.status] += 1
            by_method.setdefault(row.method, Counter())[row.status] += 1
            by_source[row.get("source", "?")] += 1
            seconds += float(row.get("seconds", 0.0))
            n_atoms += row.natoms
            if row.status == "failed":
                # grouped by the first line, kept whole: a reason cut mid-sentence (or mid-URL) helps nobody
                errors[row.get("error", "?").splitlines()[0]] += 1
        return {
            "url": self.url,
            "rows": sum(by_status.values()),
            "atoms": n_atoms,
            "status": {s: by_status.get(s, 0) for s in STATUSES},
            "methods": {m: dict(c) for m, c in sorted(by_method.items())},
            "sources": dict(sorted(by_source.items())),
            "label_seconds": seconds,
            "errors": dict(errors.most_common(10)),
        }

    # -- files -----------------------------------------------------------------------------------------

    def import_extxyz(
        self, path: str | os.PathLike, *, method: str | None = None, source: str | None = None
    ) -> AddReport:
        """Add labelled configurations from an extxyz (energy in the info, forces per atom).

        ``method`` defaults to each frame's ``method`` info key; frames with neither are refused.
        """
        from mlpkit.data.structures import read_structures

        images = read_structures(path)
        groups: dict[tuple[str, str], list[Atoms]] = {}
        for i, atoms in enumerate(images):
            m = method or atoms.info.get("method")
            if not m:
                raise InputError(f"{path} frame {i} has no 'method' in its info; give the level of theory explicitly")
            s = source or atoms.info.get("source") or Path(path).stem
            groups.setdefault((str(m), str(s)), []).append(atoms)
        added = dupes = 0
        ids: list[int] = []
        for (m, s), imgs in groups.items():
            rep = self.add(imgs, method=m, source=s, labelled=True)
            added, dupes, ids = added + rep.added, dupes + rep.duplicates, ids + list(rep.ids)
        return AddReport(added, dupes, tuple(ids))

    def export_extxyz(self, path: str | os.PathLike, **selection) -> int:
        """Write the selected rows (see :meth:`to_atoms`) to extxyz; returns the number of frames.

        Written to a temporary file and renamed, so an interrupted export never leaves half a file.
        """
        from ase.io import write

        images = self.to_atoms(**selection)
        path = Path(path)
        tmp = path.with_name(path.name + ".part")
        write(tmp, images, format="extxyz")
        os.replace(tmp, path)
        return len(images)

    # -- helpers ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Every write: one transaction that takes the store's write lock first (SQLite ``BEGIN IMMEDIATE``, a
        PostgreSQL advisory lock). A check-then-write (is this (hash, method) stored yet?) is then not raced by
        another process, and two SQLite writers wait for each other instead of one failing with "database is
        locked" (a read-then-write transaction cannot upgrade its lock while another writer waits)."""
        if not self._db.initialized:
            self._db.count()  # creating the tables commits; do it before the transaction starts
        with self._db:
            if self._db.type == "postgresql":
                self._db.lock_for_writing()
            else:
                self._db.connection.execute("BEGIN IMMEDIATE")
            yield

    def _hashes(self, method: str) -> set[str]:
        return {row.hash for row in self._db.select(method=method)}

    @staticmethod
    def _filters(**kw) -> dict:
        status = kw.get("status")
        if status is not None and status not in STATUSES:
            raise InputError(f"status must be one of {STATUSES}, not {status!r}")
        return {k: v for k, v in kw.items() if v is not None}


def _postgres_database(url: str):
    try:
        from mlpkit.data._postgres import PostgreSQLStore
    except ImportError as exc:
        raise MissingDependencyError(
            f"a postgresql:// store needs psycopg2 and ase-db-backends ({exc}): pip install 'mlpkit[postgres]'"
        ) from exc
    return PostgreSQLStore(url)


def _bare(atoms: Atoms) -> Atoms:
    """A copy with numbers, positions, cell and pbc only (no calculator, no stray arrays)."""
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def _extra_info(atoms: Atoms) -> dict:
    """Scalar info entries worth keeping (frame index, temperature, ...) as the row's data."""
    keep = {}
    for k, v in atoms.info.items():
        if k in ("energy", "free_energy", "stress", "method", "source"):
            continue
        if isinstance(v, (int, float, str, bool, np.integer, np.floating)):
            keep[str(k)] = v.item() if isinstance(v, np.generic) else v
    return {"info": keep} if keep else {}


def _row_to_atoms(row) -> Atoms:
    atoms = row.toatoms()
    atoms.info.update(row.get("data", {}).get("info", {}))
    for key in ("status", "method", "source", "hash", "split", "seconds", "error"):
        if key in row:
            atoms.info[key] = row[key]
    atoms.info["row_id"] = row.id
    return atoms
