"""numba's on-disk cache for mlpkit's compiled kernels, made to notice changes in *any* kernel source file.

Why: ``@njit(cache=True)`` stores a function's machine code together with the code of every compiled function it
calls (numba links them in), and invalidates the entry only when the function's *own* source file changes (numba
docs, "Notes on Caching": "cache invalidation fails to recognize changes in symbols defined in a different
file"). Source stamps are content hashes, so a file that returns to an earlier content revives that content's
old entries as well. mlpkit's launchers call kernels defined in other files: the one-launch step
(``potentials/bpnn/step_kernels.py``) runs ``atom_kernels``, ``network_kernels`` and ``spin_barrier`` code, the
separate launches (``kernel_threads.py``, ``network_kernels.py``) run the same block kernels through their own
copies. After an edit to one file (a branch switch, a merge, an upgrade) the two paths can therefore run
*different versions* of the same block kernel from their caches, in every fresh process, until the caller's own
file changes: the symptom is results that differ between the paths (or from the source) with nothing wrong in
the source.

How: every function with ``cache=True`` in :data:`KERNEL_SOURCES` gets one source stamp, a hash over all of those
files, so an edit to any of them invalidates every kernel's cache entry (all recompile once). Installed as numba
cache locators (:func:`install`, called at the top of each kernel module, before its decorators run) that
otherwise keep numba's own choice of directory (``NUMBA_CACHE_DIR``, ``__pycache__`` beside the file, or the user
cache). A user who sets ``NUMBA_CACHE_LOCATOR_CLASSES`` chooses numba's locators and gets numba's per-file stamps.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from numba.core import caching

#: the package root (``.../mlpkit``)
PACKAGE = Path(__file__).resolve().parents[1]
#: every mlpkit source file with ``cache=True`` kernels, relative to the package (``tests/test_kernel_cache.py``
#: checks that none is missing): they share one stamp because their kernels call each other across files
KERNEL_SOURCES = (
    "descriptors/kernels.py",
    "descriptors/atom_kernels.py",
    "descriptors/kernel_threads.py",
    "descriptors/spin_barrier.py",
    "potentials/bpnn/network_kernels.py",
    "potentials/bpnn/step_kernels.py",
    "potentials/mtp/kernels.py",
)

#: groups of files that share one stamp: real path of each member -> the group's real paths (sorted)
_GROUPS: dict[str, tuple[str, ...]] = {}


def share_stamp(files: Iterable[str | os.PathLike]) -> None:
    """Let the ``cache=True`` functions of ``files`` share one cache stamp over all of their contents (for files
    whose compiled functions call each other). Must run before those files' decorators do."""
    group = tuple(sorted(os.path.realpath(f) for f in files))
    for path in group:
        _GROUPS[path] = group


@functools.cache
def _file_hash(path: str, mtime_ns: int, size: int) -> bytes:
    """sha256 of a file's content (memoised on its mtime and size, as numba's own stamp is)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest()


def group_stamp(path: str | os.PathLike) -> str | None:
    """The shared stamp of ``path``'s group (hex sha256 over the members' names and contents; a missing member
    counts as such), or None if ``path`` is in no group."""
    group = _GROUPS.get(os.path.realpath(path))
    if group is None:
        return None
    h = hashlib.sha256()
    for member in group:
        h.update(member.encode())
        try:
            st = os.stat(member)
        except FileNotFoundError:
            h.update(b"missing")
            continue
        h.update(_file_hash(member, st.st_mtime_ns, st.st_size))
    return h.hexdigest()


class _GroupStamp:
    """Locator mixin: for a file in a group, the group's stamp; other files are left to numba's locators."""

    _py_file: str

    def get_source_stamp(self):
        return ("mlpkit shared stamp", group_stamp(self._py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.realpath(py_file) not in _GROUPS:
            return None
        return super().from_function(py_func, py_file)


def _numba_class(name: str) -> type:
    """A class of numba's caching module (older numba releases named them with a leading underscore)."""
    return getattr(caching, name, None) or getattr(caching, "_" + name)


class _UserProvidedLocator(_GroupStamp, _numba_class("UserProvidedCacheLocator")):
    """``NUMBA_CACHE_DIR``, with the group's stamp."""


class _InTreeLocator(_GroupStamp, _numba_class("InTreeCacheLocator")):
    """``__pycache__`` beside the source file, with the group's stamp."""


class _UserWideLocator(_GroupStamp, _numba_class("UserWideCacheLocator")):
    """The user's numba cache directory, with the group's stamp."""


_LOCATORS = (_UserProvidedLocator, _InTreeLocator, _UserWideLocator)


def install() -> None:
    """Register :data:`KERNEL_SOURCES` as one group and put the group locators first in numba's list (same
    directories, in numba's order). Idempotent; call before the kernel decorators run."""
    if not any(os.path.realpath(PACKAGE / s) in _GROUPS for s in KERNEL_SOURCES):
        share_stamp(PACKAGE / s for s in KERNEL_SOURCES)
    classes = _numba_class("CacheImpl")._locator_classes
    if classes[: len(_LOCATORS)] != list(_LOCATORS):
        classes[:] = [*_LOCATORS, *(c for c in classes if c not in _LOCATORS)]
