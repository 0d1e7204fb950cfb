"""The registry of recurrent cells: every `Cell` of this package's modules, in their declared order.

A cell of a user's own package is found through the `_target_` of its conf/model YAML (`cell_class`);
docs/extending.md shows one. Torch-free: the command line and the figures read it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from rnn_gradients.cells.base import Cell
from rnn_gradients.plugins import discover, locate, named

__all__ = ["Cell", "arm_order", "by_name", "cell_class", "registered"]


@cache
def registered() -> tuple[type[Cell], ...]:
    """The built-in cells, sorted by Cell.order."""
    return discover(__name__, Cell, skip=("base", "fused_layers"))


def by_name(name: str) -> type[Cell]:
    return named(registered(), name, "cell")


def cell_class(target: Any) -> type[Cell]:
    """The cell a `model._target_` names (a built-in or a user's), or a one-line ConfigError."""
    return locate(target, Cell, "model._target_")


def arm_order(extra: tuple[type[Cell], ...] = ()) -> tuple[str, ...]:
    """Every arm label in table and legend order: each cell's labels, each followed by its clipped twin."""
    from rnn_gradients.contract import clipped_label

    return tuple(label for cell in (*registered(), *extra) for variant in cell.arm_labels()
                 for label in (variant, clipped_label(variant)))
