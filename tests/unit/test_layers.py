"""The package's layers: each folder of harness/ imports only from the folders below it (and
from itself), and no modules import each other in a circle, type-only imports included.
HACKING.md says which folder a change belongs in."""

from __future__ import annotations

import ast
from pathlib import Path

from harness import REPO_ROOT

# lowest first; the front doors (cli, the pytest plugin) are the package's top
LAYERS = ("core", "config", "verdict", "sources", "series", "build", "guest", "output", "run", "")
PACKAGE = REPO_ROOT / "harness"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """The folder of ``module`` (``harness.build.kbuild``: build); "" for the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ""


def imports(path: Path) -> set[str]:
    """Every harness module ``path`` imports, wherever the import is (a function, TYPE_CHECKING)."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: a relative import")
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                 if isinstance(node, ast.ImportFrom) and node.module else [])
        found |= {n for n in names if n in modules}
    return found - {module_name(path)}


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_layers_are_the_ones_the_folders_are():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS) - {""}


def test_every_import_points_down_or_sideways():
    up = [f"{m} ({layer(m) or 'top'}) imports {i} ({layer(i) or 'top'})"
          for m, deps in GRAPH.items() for i in deps
          if LAYERS.index(layer(i)) > LAYERS.index(layer(m)) and i != "harness"]
    assert not up, "\n".join(up)


def test_no_modules_import_each_other_in_a_circle():
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        if m in path:
            raise AssertionError("a circle: " + " -> ".join(path[path.index(m):] + (m,)))
        if m in done:
            return
        for dep in sorted(GRAPH.get(m, ())):
            visit(dep, path + (m,))
        done.add(m)

    for m in GRAPH:
        visit(m, ())


def test_no_module_is_over_400_lines():
    long = [f"{p.relative_to(REPO_ROOT)}: {n}" for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400]
    assert not long, "\n".join(long)


def test_the_kinds_a_yaml_may_name_are_the_kinds_that_judge():
    from harness.config.scenarios import KIND_NEEDS
    from harness.verdict.kinds import KINDS
    assert set(KIND_NEEDS) == {name for name, k in KINDS.items() if k.declared}
    assert all(KINDS[name].needs == needs for name, needs in KIND_NEEDS.items())


def test_the_wheel_has_every_folder_of_the_package():
    import tomllib

    from setuptools import find_packages
    find = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = set(find_packages(str(REPO_ROOT), include=find["include"]))
    assert packages == {"harness"} | {f"harness.{layer}" for layer in LAYERS if layer}
