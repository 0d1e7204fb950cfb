"""The divergence and loss-excursion rules, and how often training blows up per (optimizer, clipping, lr) of
the exploding experiment.

A run counts as *diverged* when its summary says diverged, or when a loss is non-finite (a non-finite
contract.TRAIN_LOSS in the event files, or a non-finite train_loss / val_loss in the summary). It has a
*loss excursion* when the largest finite training loss logged after the first WARMUP_FRACTION (10%) of its
planned steps (trainer.max_steps, else the summary's `steps`) exceeds EXCURSION_LOSS_MULTIPLE (3) × the
task's baseline_loss. Without training-loss events the final train_loss of the summary is used instead.
A run can have both; it is counted once. The fraction is (diverged or loss excursion) / finished runs
(completed or diverged); jobs not finished (failed, interrupted, cancelled, missing, unreadable) are left out of it and
counted apart. (Not called a spike: a spike is a gradient norm's, analysis.spikes.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis.run_folder import Run
from rnn_gradients.analysis.selection import select, sort_key

EXCURSION_LOSS_MULTIPLE = 3.0
WARMUP_FRACTION = 0.1
# conf/experiment/exploding.yaml: one cell against learning rate and clipping; its own figures and tables only
EXPLODING_EXPERIMENT = "exploding"


def exploding_runs(runs: Sequence[Run], usable: bool = True) -> list[Run]:
    """The runs of the exploding experiment (finished ones only unless usable=False), which the divergence
    and loss-cliff figures and tables read and no arm comparison does."""
    return select(runs, usable=usable, experiment=EXPLODING_EXPERIMENT)


def as_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def divergence_outcome(run: Run) -> dict[str, Any]:
    """{'diverged', 'nonfinite_loss', 'loss_excursion', 'max_train_loss_after_warmup', 'diverged_or_excursion'};
    the last is None when the run is not finished."""
    summary = run.summary or {}
    train_loss = as_float(summary.get("train_loss"))
    nonfinite = any(v is not None and not math.isfinite(v) for v in (train_loss, as_float(summary.get("val_loss"))))
    series = run.scalar(contract.TRAIN_LOSS)
    baseline = as_float(run.get("baseline_loss"))
    planned = run.get("max_steps") or summary.get("steps")
    max_after = None
    if series is not None and len(series[0]):
        steps, values = series
        if not np.all(np.isfinite(values)):
            nonfinite = True
        if planned is None:
            planned = int(steps[-1])
        after = values[steps > WARMUP_FRACTION * float(planned)]
        after = after[np.isfinite(after)]  # a non-finite loss already counts as diverged
        if after.size:
            max_after = float(np.max(after))
    elif train_loss is not None and math.isfinite(train_loss):
        max_after = train_loss
    excursion = None
    if max_after is not None and baseline is not None:
        excursion = max_after > EXCURSION_LOSS_MULTIPLE * baseline
    diverged = bool(summary.get("diverged")) or summary.get("status") == contract.DIVERGED or nonfinite
    outcome = bool(diverged or excursion) if run.usable else None
    return {"diverged": diverged, "nonfinite_loss": nonfinite, "loss_excursion": excursion,
            "max_train_loss_after_warmup": max_after, "diverged_or_excursion": outcome}


def divergence_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per (optimizer, clipping, lr) of the exploding experiment."""
    chosen = exploding_runs(runs, usable=False)
    keys = sorted({(r.get("optimizer"), r.get("clipping"), r.get("lr")) for r in chosen},
                  key=lambda k: tuple(sort_key(x) for x in k))
    rows = []
    for optimizer, clipping, lr in keys:
        group = [r for r in chosen if (r.get("optimizer"), r.get("clipping"), r.get("lr")) == (optimizer, clipping, lr)]
        outcomes = [divergence_outcome(r) for r in group if r.usable]
        n = len(outcomes)
        n_bad = sum(bool(o["diverged_or_excursion"]) for o in outcomes)
        val = [as_float(r.summary.get("val_normalized_loss")) for r in group if r.usable]
        val = [v for v in val if v is not None and not math.isnan(v)]
        rows.append({
            "optimizer": optimizer, "clipping": clipping, "lr": lr, "n_runs": n,
            "n_diverged": sum(o["diverged"] for o in outcomes),
            "n_loss_excursion": sum(bool(o["loss_excursion"]) for o in outcomes),
            "n_diverged_or_excursion": n_bad,
            "fraction": n_bad / n if n else None,
            "n_not_finished": len(group) - n,
            "median_val_normalized_loss": float(np.median(val)) if val else None,
        })
    return rows
