"""The import structure of mlpkit: packages form layers, a lower layer never imports a higher one, and no
module takes part in an import cycle. Imports are read with ``ast`` at any depth (inside functions and
``TYPE_CHECKING`` blocks too), so an import hidden in a function counts like one at the top of the file.

No module is longer than :data:`MAX_MODULE_LINES` lines (the project's "no module over ~400 lines").

Strings naming modules for lazy import (``"mlpkit.uncertainty.committee:Committee"`` in the potential registry)
are not imports and are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "mlpkit"

#: layers from the bottom up: a module may import its own layer and lower ones. Sub-packages of a layer are
#: listed by their first name under mlpkit (mlpkit.<name>...).
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "files", "schema", "version", "keys", "threads"}),
    ("data", {"data"}),
    # reference methods need only the data layer; potentials may sit on top of one (Δ-learning)
    ("labelers", {"labelers"}),
    ("descriptors", {"descriptors"}),
    ("training", {"training"}),
    ("potentials", {"potentials"}),
    ("sampling and execution", {"sampling", "execution"}),
    ("uncertainty", {"uncertainty"}),
    ("md and validation", {"md", "validation"}),
    ("configuration", {"config"}),
    ("workflows", {"workflows"}),
    ("cli", {"cli"}),
    ("testing", {"testing"}),
]
#: modules that may import anything (the public facade; the shipped test helpers)
UNRESTRICTED = ("mlpkit", "mlpkit.__main__", "mlpkit.testing")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported mlpkit module, line) for every import statement of the module, at any depth, except those under
    ``if TYPE_CHECKING:`` (annotations only: never executed, so neither a layering breach nor a cycle)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "mlpkit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mlpkit":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in modules else target, node.lineno))
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return 0  # the package root as an import target: mlpkit.__version__ and the like
    for i, (_, names) in enumerate(LAYERS):
        if parts[1] in names:
            return i
    return None


def _graph() -> dict[str, list[tuple[str, int]]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


#: the project's rule is "no module over ~400 lines"; past this a module is split along a seam (one module, one idea)
MAX_MODULE_LINES = 420
#: modules over the limit whose split is under way elsewhere, with why; an entry must go once its module is short
TOO_LONG_FOR_NOW: dict[str, str] = {}


def _long_modules() -> dict[str, int]:
    """Module name → line count for every module under src/mlpkit over :data:`MAX_MODULE_LINES`."""
    counts = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    return {name: n for name, n in sorted(counts.items()) if n > MAX_MODULE_LINES}


def test_no_module_is_over_the_line_limit():
    offenders = {name: n for name, n in _long_modules().items() if name not in TOO_LONG_FOR_NOW}
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines (split them along a seam):\n" + "\n".join(
        f"    {name}: {n} lines" for name, n in offenders.items()
    )


def test_the_too_long_list_holds_only_long_modules():
    stale = sorted(set(TOO_LONG_FOR_NOW) - set(_long_modules()))
    assert not stale, f"now at most {MAX_MODULE_LINES} lines (or gone): remove from TOO_LONG_FOR_NOW: {stale}"


def test_every_module_has_a_layer():
    unknown = sorted(m for m in _modules() if m not in UNRESTRICTED and _layer(m) is None)
    assert not unknown, f"modules outside every layer (add their package to LAYERS): {unknown}"


def test_no_module_imports_a_higher_layer():
    problems = []
    for module, imports in _graph().items():
        if module in UNRESTRICTED or module.startswith("mlpkit.testing."):
            continue
        mine = _layer(module)
        for target, line in imports:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(
                    f"{module} (layer '{LAYERS[mine][0]}') imports {target} (layer '{LAYERS[theirs][0]}') "
                    f"at line {line}"
                )
    assert not problems, "imports of a higher layer:\n" + "\n".join(problems)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        # iterative depth-first search, so deep import chains cannot hit the recursion limit
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    # the package root is the public facade (``mlpkit.load``), imported lazily by nothing below it
    graph = {m: {t for t, _ in imps if t != "mlpkit"} for m, imps in _graph().items() if m != "mlpkit"}
    cycles = _cycles(graph)
    described = []
    for component in cycles:
        members = set(component)
        edges = [f"{m} -> {t}" for m in component for t in sorted(graph[m]) if t in members]
        described.append("cycle between " + ", ".join(component) + ":\n    " + "\n    ".join(edges))
    assert not cycles, "\n".join(described)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"a"}}, [["a"]]),
    ],
)
def test_cycle_finder(graph, expected):
    assert _cycles(graph) == expected


def test_the_checks_see_imports_inside_functions(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from mlpkit.workflows.engine import Step\n")
    assert _imports("mlpkit.data.m", path, {"mlpkit.workflows.engine": path}) == [("mlpkit.workflows.engine", 2)]
