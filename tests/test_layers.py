"""The package's layers: imports point only down, and no module imports itself back."""

from __future__ import annotations

from conftest import REPO
from imports import SRC, imported_modules, module_file, module_name, package_files

# What each layer may import (itself included). prepare and model are siblings, as are training and app.
ALLOWED = {
    "core": {"core"},
    "data": {"core", "data"},
    "prepare": {"core", "data", "prepare"},
    "model": {"core", "data", "model"},
    "tracking": {"core", "data", "model", "tracking"},
    "evaluation": {"core", "data", "model", "tracking", "evaluation"},
    "training": {"core", "data", "model", "tracking", "evaluation", "training"},
    "app": {"core", "data", "model", "tracking", "app"},
}


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_sits_in_a_layer():
    strays = [str(f.relative_to(REPO)) for f in package_files()
              if layer(module_name(f)) not in ALLOWED and f != SRC / "colorizer" / "__init__.py"]
    assert not strays, f"modules outside the layers {sorted(ALLOWED)}: {strays}"


def test_imports_only_point_down():
    wrong = []
    for file in package_files():
        here = layer(module_name(file))
        for name in imported_modules(file):
            there = layer(name)
            if here and there and there not in ALLOWED[here]:
                wrong.append(f"{file.relative_to(REPO)} imports {name} ({here} -> {there})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = {module_name(f): {m for m in imported_modules(f) if module_file(m) != f} for f in package_files()}
    # A package's own __init__ importing nothing keeps `a.b` -> `a` edges out: follow imports only.
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))
