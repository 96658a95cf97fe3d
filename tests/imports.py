"""Static import graph of the colorizer package: every import, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = "colorizer"
SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The file of module or package `name` (a dotted name inside the package), if it exists."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(file: Path) -> str:
    parts = file.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(file: Path) -> set[str]:
    """The package's modules that `file` imports, directly (parents' `__init__` not included)."""
    found = set()
    is_package = file.name == "__init__.py"
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, file, is_package)
            # `from pkg import name`: name is a submodule or an attribute of pkg.
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if _inside(name) and module_file(name)}
    return found


def closure(files: list[Path]) -> set[Path]:
    """Every file of the package that running `files` can execute: imports, transitively,
    plus the `__init__.py` of every package on the way."""
    seen: set[Path] = set()
    todo = list(files)
    while todo:
        file = todo.pop()
        for name in imported_modules(file):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                target = module_file(".".join(parts[:depth]))
                if target and target not in seen:
                    seen.add(target)
                    todo.append(target)
    return seen


def package_files() -> list[Path]:
    return sorted((SRC / PACKAGE).rglob("*.py"))


def _inside(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _absolute(node: ast.ImportFrom, file: Path, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    if not str(file).startswith(str(SRC)):
        raise AssertionError(f"{file}: relative import outside the package")
    parts = module_name(file).split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))
