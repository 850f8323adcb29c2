"""numba's on-disk cache of the kernels notices an edit to any kernel source file (mlpkit.descriptors.kernel_cache):
a launcher cached with an old version of a kernel from another file would otherwise keep running it."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlpkit.descriptors import kernel_cache

MODULES = (
    "mlpkit.descriptors.kernels",
    "mlpkit.descriptors.atom_kernels",
    "mlpkit.descriptors.kernel_threads",
    "mlpkit.descriptors.spin_barrier",
    "mlpkit.potentials.bpnn.network_kernels",
    "mlpkit.potentials.bpnn.step_kernels",
    "mlpkit.potentials.mtp.kernels",
)


def test_every_cached_kernel_file_shares_the_stamp():
    """Every source file with ``cache=True`` kernels is listed, and installs the locators before its first one."""
    cached = {
        p.relative_to(kernel_cache.PACKAGE).as_posix()
        for p in kernel_cache.PACKAGE.rglob("*.py")
        if re.search(r"^@njit\(.*cache=True", p.read_text(), re.M)
    }
    assert cached == set(kernel_cache.KERNEL_SOURCES)
    for rel in kernel_cache.KERNEL_SOURCES:
        text = (kernel_cache.PACKAGE / rel).read_text()
        first_kernel = re.search(r"^@njit\(.*cache=True", text, re.M)
        assert first_kernel is not None and text.index("kernel_cache.install()") < first_kernel.start(), rel


@pytest.mark.parametrize("module", MODULES)
def test_kernels_use_the_shared_stamp(module):
    mod = importlib.import_module(module)
    dispatchers = [f for f in vars(mod).values() if hasattr(f, "_cache") and hasattr(f, "py_func")]
    dispatchers = [d for d in dispatchers if d.py_func.__module__ == module]
    assert dispatchers
    stamp = kernel_cache.group_stamp(mod.__file__)
    assert stamp is not None
    for d in dispatchers:
        locator = d._cache._impl.locator
        assert isinstance(locator, kernel_cache._GroupStamp), d
        assert locator.get_source_stamp() == ("mlpkit shared stamp", stamp)


#: run in a fresh interpreter: kernel_cache loaded from its file (no mlpkit/torch import), then a cached caller of
#: a cached callee in another file; GROUP: the two files share a stamp
_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("kernel_cache", KERNEL_CACHE)
kc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kc)
sys.path.insert(0, DIR)
if GROUP:
    kc.share_stamp([DIR + "/callee.py", DIR + "/caller.py"])
    kc.install()
import caller
print(caller.g(1.0))
"""


def _run(directory: Path, group: bool) -> float:
    code = _SCRIPT.replace("KERNEL_CACHE", repr(str(Path(kernel_cache.__file__))))
    code = code.replace("DIR", repr(str(directory))).replace("GROUP", str(group))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(proc.stdout.split()[-1])


@pytest.mark.parametrize("group", [False, True])
def test_edit_to_a_callee_file_reaches_its_cached_callers(tmp_path, group):
    """numba alone (``group=False``) keeps running the callee's old code in the caller's cache entry after the
    callee's file changed (the hazard, shown so this test can fail); with a shared stamp the caller recompiles."""
    callee = tmp_path / "callee.py"
    callee.write_text("from numba import njit\n\n@njit(cache=True)\ndef f(x):\n    return x + 1.0\n")
    (tmp_path / "caller.py").write_text(
        textwrap.dedent(
            """
            from numba import njit
            import callee

            @njit(cache=True)
            def g(x):
                return 2.0 * callee.f(x)
            """
        )
    )
    assert _run(tmp_path, group) == 4.0
    assert any(re.match(r"caller\.g-.*\.nbi$", p.name) for p in (tmp_path / "__pycache__").iterdir())
    callee.write_text(callee.read_text().replace("x + 1.0", "x + 2.0"))
    assert _run(tmp_path, group) == (6.0 if group else 4.0)
