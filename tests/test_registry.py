"""The registries of cells and tasks are the only place their names live: nothing else in src/ spells a
cell's or task's name or label, and the README's option table lists exactly what is registered."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rnn_gradients import cells, contract, tasks

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rnn_gradients"


def plugin_words() -> dict[str, Path]:
    """Every name and label of a registered cell or task -> the module allowed to spell it."""
    words = {}
    for cell in cells.registered():
        module = Path(cell.__module__.replace(".", "/") + ".py")
        for label in cell.arm_labels():
            words[label] = words[contract.clipped_label(label)] = module
        words[cell.name] = module
    for task in tasks.registered():
        words[task.name] = Path(task.__module__.replace(".", "/") + ".py")
    return words


def string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant of a module that is not a docstring or a Cell.fused value."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    torch_classes = {id(node.value) for node in ast.walk(tree)  # `fused = "RNN"` names torch.nn.RNN, not a cell
                     if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["fused"]}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | torch_classes]


def test_no_module_spells_a_cell_or_task_that_is_not_its_own():
    words = plugin_words()
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(ROOT / "src")
        for line, text in string_literals(path):
            owner = words.get(text)
            if owner is not None and owner != relative:
                found.append(f"{relative}:{line}: {text!r} (belongs to {owner})")
    assert found == []


def readme_options(group: str) -> list[str]:
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| `{group}` |"))
    return re.findall(r"`(\w+)`", row.split("|")[2])


@pytest.mark.parametrize("group,registry", [("model", cells), ("data", tasks)])
def test_the_readme_option_table_lists_what_is_registered(group, registry):
    assert sorted(readme_options(group)) == sorted(p.name for p in registry.registered())


def test_arm_order_follows_the_registry():
    order = cells.arm_order()
    assert order[:6] == ("RNN", "RNN+clip", "LSTM (no cell carry)", "LSTM (no cell carry)+clip", "LSTM", "LSTM+clip")
    assert len(order) == len(set(order)) == 2 * sum(len(c.arm_labels()) for c in cells.registered())
