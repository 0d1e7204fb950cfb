"""The numbers of the cures figure and table (conf/experiment/cures.yaml: the cures found after the LSTM
side by side, every cell at the same settings): per task, at one sequence length, per cell, the final
val_normalized_loss of every seed and its median, the median val_accuracy, the first step whose validation
loss fell below BELOW_BASELINE × the memoryless baseline, and the log10 gradient ratio of h at
initialization and after training (flow_ratios: the statistic of the gradient-flow table).

The sequence length: PREFERRED_SEQ_LEN (T=100, where the plain RNN fails adding and the quick and 2,500-step
sweeps run) when the task has it, else the longest. Cells are never named here: they come from the runs'
`arm` fields, in the cells' registry order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis.flow_ratios import FINAL, INIT, median_log10_ratio, run_log10_ratio
from rnn_gradients.analysis.run_folder import Run
from rnn_gradients.analysis.seed_stats import median_of
from rnn_gradients.analysis.selection import arm_sort_key, select, sort_key, task_sort_key

CURES_EXPERIMENT = "cures"  # conf/experiment/cures.yaml
PREFERRED_SEQ_LEN = 100
BELOW_BASELINE = 0.9  # "learned something": the validation loss 10 % under the memoryless baseline
NEVER = math.inf  # first_step_below of a run whose validation loss never got there


def cures_runs(runs: Sequence[Run]) -> list[Run]:
    """The finished runs of the cures experiment (no other experiment's runs: they vary other settings)."""
    return select(runs, experiment=CURES_EXPERIMENT)


def cures_seq_len(runs: Sequence[Run], task: str) -> int | None:
    """The one T a task is shown at: PREFERRED_SEQ_LEN when a run of the task has it, else the longest."""
    lengths = {int(r.get("seq_len")) for r in runs if r.get("task") == task and r.get("seq_len") is not None}
    if not lengths:
        return None
    return PREFERRED_SEQ_LEN if PREFERRED_SEQ_LEN in lengths else max(lengths)


def cures_settings(runs: Sequence[Run]) -> dict[str, int]:
    """{task: T} for every task of these runs, in the tasks' registry order (adding, copy, ...)."""
    tasks = sorted({r.get("task") for r in runs if r.get("task") is not None}, key=task_sort_key)
    settings = {task: cures_seq_len(runs, task) for task in tasks}
    return {task: seq_len for task, seq_len in settings.items() if seq_len is not None}


def first_step_below(run: Run, fraction: float = BELOW_BASELINE) -> float | None:
    """The first logged step whose contract.VAL_NORMALIZED_LOSS is below `fraction` (of the baseline);
    NEVER when it never was, None when the run logged no validation loss (no event files read)."""
    series = run.scalar(contract.VAL_NORMALIZED_LOSS)
    if series is None or not len(series[0]):
        return None
    steps, values = series
    hits = np.flatnonzero(np.asarray(values, dtype=float) < fraction)
    return float(steps[hits[0]]) if hits.size else NEVER


def _cell(group: Sequence[Run]) -> dict[str, Any]:
    """One cell's numbers over its seeds (seed order)."""
    group = sorted(group, key=lambda r: sort_key(r.get("seed")))
    below = [first_step_below(r) for r in group]
    known = [b for b in below if b is not None]
    return {
        "seeds": [r.get("seed") for r in group],
        "runs": [str(r.path) for r in group],
        "n_diverged": sum(r.status == contract.DIVERGED for r in group),
        "val_normalized_loss": [r.summary.get("val_normalized_loss") for r in group],
        "median_val_normalized_loss": median_of([r.summary.get("val_normalized_loss") for r in group]),
        "val_accuracy": [r.summary.get("val_accuracy") for r in group],
        "median_val_accuracy": median_of([r.summary.get("val_accuracy") for r in group]),
        "first_step_below": below,  # NEVER (inf) = never below, None = no validation loss logged
        "median_first_step_below": median_of(known),  # NEVER when most seeds never got there
        "n_below": sum(b is not None and b != NEVER for b in below),
        **{f"log10_ratio_h_{when}": [run_log10_ratio(r, "h", when) for r in group] for when in (INIT, FINAL)},
        **{f"median_log10_ratio_h_{when}": median_log10_ratio(group, "h", when) for when in (INIT, FINAL)},
        "final_step": max((int(r.grad_flow.steps[-1]) for r in group if r.grad_flow is not None), default=None),
    }


def cures_data(runs: Sequence[Run]) -> dict[str, Any]:
    """{'threshold': BELOW_BASELINE, 'tasks': {task: {'seq_len', 'cells': {arm: _cell(...)}}}} of the cures
    experiment, tasks in registry order, arms in registry order; {'tasks': {}} without cures runs."""
    chosen = cures_runs(runs)
    data: dict[str, Any] = {"threshold": BELOW_BASELINE, "tasks": {}}
    for task, seq_len in cures_settings(chosen).items():
        group = select(chosen, task=task, seq_len=seq_len)
        arms = sorted({r.get("arm") for r in group if r.get("arm") is not None}, key=arm_sort_key)
        data["tasks"][task] = {"seq_len": seq_len, "cells": {arm: _cell(select(group, arm=arm)) for arm in arms}}
    return data


def cures_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """cures_data as rows: one per (task, cell), in the order of the figure."""
    rows = []
    for task, panel in cures_data(runs)["tasks"].items():
        for arm, cell in panel["cells"].items():
            rows.append({"task": task, "seq_len": panel["seq_len"], "arm": arm, "n_seeds": len(cell["seeds"]),
                         **{k: v for k, v in cell.items() if k not in ("runs",)}})
    return rows
