"""Choosing runs and ordering them: by classification field, by arm, by seed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rnn_gradients import contract
from rnn_gradients.analysis.run_folder import Run


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
    """contract.ARM_ORDER first, then any other label alphabetically."""
    return (contract.ARM_ORDER.index(arm), "") if arm in contract.ARM_ORDER else (len(contract.ARM_ORDER), str(arm))


def choose_setting(runs: Sequence[Run], preferred_task: str = "adding") -> tuple[str, int] | None:
    """(task, seq_len) to show when a figure has room for one: the preferred task if any run has it,
    then the largest seq_len among those runs."""
    candidates = [r for r in runs if r.get("task") is not None and r.get("seq_len") is not None]
    if not candidates:
        return None
    tasks = {r.get("task") for r in candidates}
    task = preferred_task if preferred_task in tasks else sorted(tasks)[0]
    seq_len = max(int(r.get("seq_len")) for r in candidates if r.get("task") == task)
    return task, seq_len


def first_seed(runs: Sequence[Run]) -> Run | None:
    """The run with the smallest seed (ties: the first found)."""
    return min(runs, key=lambda r: sort_key(r.get("seed")), default=None)
