"""Choosing runs and ordering them: by classification field, by arm, by seed; and the one rule of which runs
the arm-comparison figures draw (`comparison_runs`).

Cells and arms are never spelled here: they come from the runs (their `arm` field) and are ordered by the
cells' registry (cells.arm_order), so a new cell shows up in every figure without an edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rnn_gradients import contract
from rnn_gradients.analysis.run_folder import Run
from rnn_gradients.cells import arm_order
from rnn_gradients.tasks import registered as registered_tasks

# The experiment whose runs compare the arms (conf/experiment/arms.yaml). The other experiments (forget_bias,
# exploding, ...) vary something else (a forget bias, a learning rate) and so never enter an arm comparison.
ARMS_EXPERIMENT = "arms"


def select(runs: Iterable[Run], usable: bool = True, **criteria: Any) -> list[Run]:
    """Runs whose info matches every criterion (a value, or a tuple/list/set of accepted values); only
    finished runs unless usable=False."""
    chosen = []
    for run in runs:
        if usable and not run.usable:
            continue
        ok = True
        for key, wanted in criteria.items():
            value = run.info.get(key)
            ok = value in wanted if isinstance(wanted, (tuple, list, set, frozenset)) else value == wanted
            if not ok:
                break
        if ok:
            chosen.append(run)
    return chosen


def sort_key(value: Any) -> tuple:
    """Sort None last and numbers numerically."""
    if value is None:
        return (2, 0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0, str(value))


def arm_sort_key(arm: Any) -> tuple:
    """The registry's arms first, in cells.arm_order(), then any other label (a user's cell) alphabetically."""
    order = arm_order()
    return (order.index(arm), "") if arm in order else (len(order), str(arm))


def comparison_runs(runs: Iterable[Run]) -> list[Run]:
    """The finished runs every arm-comparison figure draws (learning curves, loss against T, gradient flow
    through time, gradient norms, histograms): those of the arms experiment where there are any, otherwise
    those of no experiment (a plain `-m model=...,... data=...,...` multirun, or single runs).

    The one place of this rule, so that every figure compares the same runs: `make reproduce` sweeps arms,
    forget_bias and exploding into separate folders and draws them together, and the runs of forget_bias or
    exploding (one cell at other settings) must never be mixed into the comparison of the arms.
    """
    runs = list(runs)
    return select(runs, experiment=ARMS_EXPERIMENT) or select(runs, experiment=None)


def comparison_source(runs: Sequence[Run]) -> str:
    """In words, where the runs `comparison_runs` chose from come from (for captions and titles)."""
    if not runs:
        return "no runs"
    experiment = runs[0].experiment
    return f"{experiment} experiment" if experiment else "runs of no experiment"


def cell_label(arm: Any) -> str:
    """The arm's cell as figures name it: the arm label without contract.CLIP_SUFFIX ('LSTM+clip' -> 'LSTM')."""
    text = str(arm)
    return text[: -len(contract.CLIP_SUFFIX)] if text.endswith(contract.CLIP_SUFFIX) else text


def cell_labels(runs: Iterable[Run]) -> str:
    """The cells of these runs, from their own `arm` fields, in registry order: 'LSTM' or 'RNN, LSTM'."""
    labels = {cell_label(r.get("arm")) for r in runs if r.get("arm") is not None}
    return ", ".join(sorted(labels, key=arm_sort_key)) or "(unknown cell)"


def task_sort_key(task: Any) -> tuple:
    """The registry's tasks first, in their declared order (adding, copy, ...), then any other alphabetically."""
    order = [t.name for t in registered_tasks()]
    return (order.index(task), "") if task in order else (len(order), str(task))


def choose_setting(runs: Sequence[Run]) -> tuple[str, int] | None:
    """(task, seq_len) to show when a figure has room for one: the first task in registry order that any
    run has, then the largest seq_len among those runs."""
    candidates = [r for r in runs if r.get("task") is not None and r.get("seq_len") is not None]
    if not candidates:
        return None
    task = min({r.get("task") for r in candidates}, key=task_sort_key)
    seq_len = max(int(r.get("seq_len")) for r in candidates if r.get("task") == task)
    return task, seq_len


def first_seed(runs: Sequence[Run]) -> Run | None:
    """The run with the smallest seed (ties: the first found)."""
    return min(runs, key=lambda r: sort_key(r.get("seed")), default=None)
