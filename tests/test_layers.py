"""The design's layers hold: no Qt below the window, no import cycles between modules.

Imports are read from the source (module level and inside functions alike), so a lazy import
that closes a cycle counts too: what a module needs at any time is what it depends on.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "explorer"
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = set(modules())


def imports(name: str, path: Path) -> set[str]:
    """Every module name ``name`` imports anywhere in its source (absolute form)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            named = {f"{base}.{alias.name}" for alias in node.names}
            out.update(named)
            # `from explorer import workflow` needs the submodule; the package itself (like the
            # parent of every import) is not counted, or a package's lazy `open` would close a loop
            if not named <= MODULES:
                out.add(base)
    return out


def test_no_qt_below_the_window():
    offenders = {
        name: sorted(i for i in imports(name, path) if i.split(".")[0] in QT)
        for name, path in modules().items()
        if not name.startswith("explorer.gui")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_no_import_cycles():
    known = modules()
    edges = {name: {i for i in imports(name, path) if i in known and i != name} for name, path in known.items()}
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                cycles.append(sorted(part))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other (directly or round a loop): {cycles}"


def test_the_checks_see_what_they_look_for(tmp_path):
    """The import reader finds lazy and relative imports (else the tests above could not fail)."""
    path = tmp_path / "sample.py"
    path.write_text("from . import sibling\n\ndef later():\n    from PySide6.QtCore import Qt\n    import numpy\n")
    found = imports("explorer.labels.sample", path)
    assert {"explorer.labels.sibling", "PySide6.QtCore", "numpy"} <= found
