"""Every module imports, and the import graph of `workbench` has no cycles.

Imports inside functions count too: they are how a cycle hides (the CLI and
the speed benchmark once imported each other that way).
"""

import ast
import graphlib
import importlib
import os
import pkgutil

import pytest

import workbench

PACKAGE_DIR = os.path.dirname(workbench.__file__)


def module_files():
    """{module name: file} for every module of the package."""
    modules = {}
    for root, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                parts = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules[".".join(parts)] = path
    return modules


def imported_modules(name, path, known):
    """The workbench modules that module `name` (file `path`) imports anywhere in its body."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # `from a import b` imports module a.b when b is one, else a name of a.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def test_the_import_graph_has_no_cycles():
    modules = module_files()
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert graph["workbench.bench.speed"] >= {"workbench.runs.record"}  # the walk sees imports
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


def test_every_module_imports():
    failures = []
    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as e:
            # An optional extra's package (e.g. apache_beam) may be absent; our own modules may not.
            if e.name is None or e.name.split(".")[0] == "workbench":
                failures.append(f"{info.name}: {e}")
        except Exception as e:  # noqa: BLE001 - report every module that fails, not just the first
            failures.append(f"{info.name}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)
