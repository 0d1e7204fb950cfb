"""The import graph of rnn_gradients.analysis and rnn_gradients.figures: no circle, analysis never draws,
each figure module stands alone, and the names the contract owns are not spelled again.

Read from the source with `ast` (what a module imports at any depth, in functions too), after importing
every module once for real.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import rnn_gradients
from rnn_gradients import contract
from rnn_gradients.figures.registry import FIGURES

SRC = Path(rnn_gradients.__file__).parent
PACKAGES = ("analysis", "figures")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((SRC / package).glob("*.py"))}
FIGURE_MODULES = {figure.draw.__module__ for figure in FIGURES}


def imports_of(name: str) -> set[str]:
    """Every module `name` imports (absolute names; `from package import module` counts as both)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            # `from rnn_gradients import contract` imports the module rnn_gradients.contract
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if f"{base}.{alias.name}" in MODULES or base == "rnn_gradients")
    return found - {"__future__"}


GRAPH = {name: {m for m in imports_of(name) if m in MODULES and m != name} for name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_no_import_circle():
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail("import circle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for child in sorted(GRAPH[name]):
            visit(child, path + [name])
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, [])


def test_analysis_never_draws():
    for name in MODULES:
        if name.startswith("rnn_gradients.analysis"):
            bad = {m for m in imports_of(name) if m.split(".")[0] == "matplotlib" or m.startswith("rnn_gradients.figures")}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_importing_the_analysis_loads_no_matplotlib():
    code = "import sys, rnn_gradients.analysis; print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]"


def test_each_figure_module_imports_only_the_style_and_the_analysis():
    assert len(FIGURE_MODULES) == len(FIGURES)  # one module per figure
    allowed_own = {"rnn_gradients", "rnn_gradients.contract", "rnn_gradients.figures", "rnn_gradients.figures.style"}
    for name in FIGURE_MODULES:
        assert name.rpartition(".")[2] == next(f.name for f in FIGURES if f.draw.__module__ == name)  # named after it
        for imported in imports_of(name):
            top = imported.split(".")[0]
            if top == "rnn_gradients":  # the packages themselves: their __init__ (empty for figures) runs first
                ok = imported in allowed_own or imported.startswith("rnn_gradients.analysis")
            else:
                ok = top in ("numpy", "matplotlib") or top in sys.stdlib_module_names
            assert ok, f"{name} imports {imported}"
        assert not GRAPH[name] & (FIGURE_MODULES - {name}), f"{name} imports another figure module"


def test_no_module_name_is_shared_with_another_module_of_src():
    names: dict[str, list[Path]] = {}
    for path in SRC.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            names.setdefault(path.stem, []).append(path)
    ours = {p.stem for package in PACKAGES for p in (SRC / package).glob("*.py")}
    shared = {stem: [str(p.relative_to(SRC)) for p in paths] for stem, paths in names.items()
              if len(paths) > 1 and stem in ours}
    assert not shared, shared


def test_contract_names_are_not_spelled_again():
    """Tags and run-folder file names come from rnn_gradients.contract (docstrings may name them)."""
    names = [contract.SUMMARY_FILE, contract.GRAD_FLOW_FILE, contract.CONFIG_RESOLVED_FILE, contract.TRAIN_LOG_FILE,
             contract.LAST_CHECKPOINT, contract.HYDRA_DIR, contract.SWEEP_REPORT_MD, contract.SWEEP_REPORT_JSON,
             *contract.STAGE_TAGS["train"], *contract.STAGE_TAGS["val"], contract.GRAD_NORM, contract.PRECLIP_NORM,
             contract.POSTCLIP_NORM, contract.CLIPPED, contract.UPDATE_RATIO, contract.GRAD_HIST, contract.GRAD_FLOW,
             contract.GATES, "failed_or_running"]
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                spelled = [n for n in names if n in node.value]
                assert not spelled, f"{name}, line {node.lineno}: {node.value!r} spells {spelled}"
