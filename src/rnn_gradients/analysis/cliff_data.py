"""The numbers of the loss_cliff figure, from the loss-cliff slices of the exploding experiment
(loss_cliff_npz): for one optimizer and learning rate, the first seed of each clipping mode, its slice at
the step of its largest pre-clip gradient norm, the step it actually took from there, when it diverged its
slice at the step before the divergence, and its slice at its first step that multiplied its batch loss.
Losses are divided by the baseline loss.

The setting: an (optimizer, lr) at which both an unclipped and a norm-clipped run have the file (else any
with the file); SGD first (its step follows the gradient: the cliff shows), then Adam, then the others;
the largest such lr (where unclipped SGD diverges).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rnn_gradients import contract
from rnn_gradients.analysis.divergence_rules import exploding_runs
from rnn_gradients.analysis.loss_cliff_npz import CliffSlice
from rnn_gradients.analysis.run_folder import Run
from rnn_gradients.analysis.selection import cell_labels, first_seed, select, sort_key

CLIP_ORDER = ("none", "norm", "value")  # the modes drawn, in this order (choices.CLIP_MODES)
OPTIMIZER_PREFERENCE = ("sgd", "adam")


def cliff_runs(runs: Sequence[Run]) -> list[Run]:
    """Finished exploding-experiment runs whose file holds the slice at the largest gradient norm."""
    return [r for r in exploding_runs(runs)
            if r.loss_cliff is not None and r.loss_cliff.max_norm is not None]


def _optimizer_key(optimizer: Any) -> tuple:
    preferred = OPTIMIZER_PREFERENCE.index(optimizer) if optimizer in OPTIMIZER_PREFERENCE else len(OPTIMIZER_PREFERENCE)
    return (preferred, sort_key(optimizer))


def sort_key_numeric(value: Any) -> tuple:
    """Numbers by value, anything else below them (so max() takes the largest number)."""
    return (1, float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else (0, 0.0)


def choose_cliff_setting(runs: Sequence[Run]) -> tuple[Any, Any, bool] | None:
    """(optimizer, lr, paired): paired = both an unclipped and a norm-clipped run are there."""
    settings = {(r.get("optimizer"), r.get("lr")) for r in runs}
    paired = {s for s in settings if all(select(runs, optimizer=s[0], lr=s[1], clipping=m) for m in ("none", "norm"))}
    pool = paired or settings
    if not pool:
        return None
    optimizer = min({s[0] for s in pool}, key=_optimizer_key)
    lr = max((s[1] for s in pool if s[0] == optimizer), key=sort_key_numeric)
    return optimizer, lr, bool(paired)


def _curve(s: CliffSlice) -> dict[str, Any]:
    return {"step": s.step, "grad_norm": s.grad_norm, "alphas": s.alphas, "loss": s.normalized(s.losses),
            "loss0": s.normalized(s.loss0), "actual_alpha": s.actual_alpha,
            "actual_loss": s.normalized(s.actual_loss), "step_rise": s.step_rise}


def drawn_kind(mode: dict[str, Any]) -> str:
    """The slice the figure draws for one mode: a diverged run's first uphill step (its steepest step and its
    step before the divergence come from after it blew up, and would stretch the loss axis over every other
    line), else the steepest step."""
    if mode["diverged"] and mode[contract.CLIFF_FIRST_UPHILL] is not None:
        return contract.CLIFF_FIRST_UPHILL
    return contract.CLIFF_AT_MAX_NORM


def loss_cliff_data(runs: Sequence[Run]) -> dict[str, Any]:
    """{'optimizer', 'lr', 'paired', 'n_runs', 'task', 'seq_len', 'cell' (the runs' own cell label, for the
    title), 'modes': {clipping: {'run', 'seed', 'diverged',
    'baseline_loss', 'max_norm': {...}, 'before_divergence': {...} | None, 'first_uphill': {...} | None,
    'drawn': the kind the figure draws}}}, each slice {'step', 'grad_norm', 'alphas', 'loss'
    (loss / baseline at each α), 'loss0', 'actual_alpha', 'actual_loss' (/ baseline), 'step_rise'}, of the first
    seed of each mode. {} without any slice. n_runs: runs with the file, over every setting."""
    candidates = cliff_runs(runs)
    setting = choose_cliff_setting(candidates)
    if setting is None:
        return {}
    optimizer, lr, paired = setting
    chosen = select(candidates, optimizer=optimizer, lr=lr)
    modes = sorted({r.get("clipping") for r in chosen},
                   key=lambda m: (CLIP_ORDER.index(m) if m in CLIP_ORDER else len(CLIP_ORDER), sort_key(m)))
    data: dict[str, Any] = {"optimizer": optimizer, "lr": lr, "paired": paired, "n_runs": len(candidates),
                            "task": chosen[0].get("task"), "seq_len": chosen[0].get("seq_len"),
                            "cell": cell_labels(chosen), "modes": {}}
    for mode in modes:
        run = first_seed(select(chosen, clipping=mode))
        cliff = run.loss_cliff
        data["modes"][mode] = {
            "run": str(run.path), "seed": run.get("seed"), "diverged": run.status == contract.DIVERGED,
            "baseline_loss": cliff.baseline_loss, "max_norm": _curve(cliff.max_norm),
            "before_divergence": None if cliff.before_divergence is None else _curve(cliff.before_divergence),
            "first_uphill": None if cliff.first_uphill is None else _curve(cliff.first_uphill),
        }
        data["modes"][mode]["drawn"] = drawn_kind(data["modes"][mode])
    return data
