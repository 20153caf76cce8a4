"""The layering holds: `pipelines/` (core) <- `trainer/` <- `curate/`, `studio/` (application).

Nothing in `pipelines/` imports `trainer`, `curate` or `studio`, and nothing in `trainer/`
imports `curate` or `studio`: not at module level, not inside a function, not by name
(`importlib.import_module`), and not by starting a child process that runs them
(`python -c "from curate.cli import ..."`, `python -m curate.cli`, `ChildSpec.python("curate")`).
Checked twice: by importing every module in a fresh interpreter and looking at `sys.modules`,
and statically over the source, which also sees function-level imports and child commands.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"pipelines": ("trainer", "curate", "studio"), "trainer": ("curate", "studio")}

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module({package!r})
for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
    if info.name.split(".")[-1] == "__main__":
        continue   # `python -m <package>`'s entry runs on import
    importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {banned!r})))
"""


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_importing_a_layer_loads_nothing_above_it(package):
    banned = list(LAYERS[package])
    code = _IMPORT_ALL.format(package=package, banned=banned)
    proc = subprocess.run([sys.executable, "-P", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing {package}.* loaded {loaded}"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


# -- the static check --------------------------------------------------------------------------
_IMPORT_TEXT = re.compile(r"(?:^|[\s;(\"'])(?:from|import)\s+([A-Za-z_][\w.]*)")
_LOADERS = {"import_module", "__import__", "python", "find_spec"}


def _top(name: str) -> str:
    return name.split(".")[0]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def imported_names(source: str, filename: str = "<src>") -> list[tuple[int, str]]:
    """(line, module) for every way `source` can bring in a module: `import`, `from ... import`
    (anywhere, functions included), `importlib.import_module("m")` and friends, `-m m` in a
    command list, and `import m` / `from m import` in a string (what `python -c` would run)."""
    tree = ast.parse(source, filename)
    docs = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if (name in _LOADERS and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.append((node.lineno, node.args[0].value))
        elif isinstance(node, (ast.List, ast.Tuple)):
            items = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            for flag, target in zip(items, items[1:]):
                if flag == "-m" and isinstance(target, str):
                    found.append((node.lineno, target))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docs):
            found += [(node.lineno, m) for m in _IMPORT_TEXT.findall(node.value)]
    return found


def violations(package: str) -> list[str]:
    banned = LAYERS[package]
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT)
        for line, module in imported_names(path.read_text(encoding="utf-8"), str(rel)):
            if _top(module) in banned:
                out.append(f"{rel}:{line} brings in {module}")
    return out


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_source_never_names_a_layer_above(package):
    assert violations(package) == []


def test_the_static_check_sees_every_way_in():
    src = '''
"""Docstring: `from curate.cli import main` is only text here."""
import os
import trainer.train
from studio import _data

def later():
    from curate.roi import compare_runs
    import importlib
    importlib.import_module("studio.app")
    subprocess.run([sys.executable, "-c", "from curate.cli import _entry; _entry()"])
    subprocess.run([sys.executable, "-m", "curate.cli", "train"])
    ChildSpec.python("trainer", "run")
'''
    found = imported_names(src)
    assert {_top(m) for _, m in found} >= {"os", "importlib", "curate", "studio", "trainer"}
    assert sorted(line for line, m in found if _top(m) in ("trainer", "studio")) == [4, 5, 10, 13]
    lines = sorted(line for line, m in found if _top(m) == "curate")
    assert lines == [8, 11, 12]   # the docstring on line 2 is not counted
