"""The house plan, checked on the source: imports run downward, no cycles, small files.

The import graph is read from the source (every ``import`` statement, the ones inside functions
included, but not those under ``if TYPE_CHECKING:``, which never run). The layers are the ones
the README's Layout section states.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stablerecon

ROOT = Path(stablerecon.__file__).parent
PACKAGE = "stablerecon"

#: Lowest first; a part may import its own modules and any part of a lower layer, nothing else.
LAYERS: list[set[str]] = [
    {"contracts", "validation", "files", "config_base", "allocator", "_version"},
    {"registry", "targets"},
    {"interop"},
    {"operators", "metrics"},
    {"sparsity", "data"},
    {"solvers"},
    {"nets", "csc", "posterior"},
    {"training", "report"},
    {"audit"},
    {"recipes"},
    {"config"},
    {"runner"},
    {"cli"},
]
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports (at run time, lazily or not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[: len(base) - (node.level - 1)]
                target = ".".join(prefix + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            found.update(submodules)
            if len(submodules) < len(node.names) and target in modules:
                found.add(target)  # names defined in the module itself
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found.add(alias.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"stablerecon.{part} is in no layer of tests/test_layout.py: add it there and to "
                         f"the README's Layout section")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            strongconnect(v)
    return out


def test_the_walker_sees_lazy_imports_and_skips_type_checking(tmp_path: Path) -> None:
    # the checker itself must be able to fail: a planted lazy cycle and a typing-only import
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text("from .a import f\nfrom typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from .c import X\n")
    (pkg / "c.py").write_text("")
    modules = {f"{PACKAGE}.{n}": pkg / f"{n}.py" for n in ("a", "b", "c")}
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph[f"{PACKAGE}.a"] == {f"{PACKAGE}.b"}
    assert graph[f"{PACKAGE}.b"] == {f"{PACKAGE}.a"}
    assert _cycles(graph) == [[f"{PACKAGE}.a", f"{PACKAGE}.b"]]


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_imports_run_downward() -> None:
    wrong = []
    for module, deps in _graph().items():
        part = _part(module)
        if not part:
            continue  # the root package only names its parts (lazily, on attribute access)
        for dep in deps:
            other = _part(dep)
            if other != part and _layer(other) >= _layer(part):
                wrong.append(f"{module} imports {dep}")
    assert wrong == []


def test_nothing_imports_the_root_package_or_the_cli() -> None:
    offenders = [f"{m} imports {d}" for m, deps in _graph().items() for d in deps
                 if (d == PACKAGE or _part(d) == "cli") and _part(m) != "cli"]
    assert offenders == []


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_files_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_LINES})"
