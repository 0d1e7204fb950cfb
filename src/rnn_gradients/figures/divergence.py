"""Figure 6: how often training blows up against the learning rate (exploding experiment).

A run counts as *diverged* when its summary.json says diverged, or when a loss is non-finite (a
non-finite train/loss in the event files, or a non-finite train_loss / val_loss in summary.json).
It counts as *spiked* when the largest finite train/loss logged after the first WARMUP_FRACTION (10%)
of its planned steps (trainer.max_steps, else summary `steps`) exceeds SPIKE_LOSS_MULTIPLE (3) × the
task's baseline_loss. Without train/loss events the final train_loss of summary.json is used instead.
A run can be both; the figure counts it once.
The fraction plotted is (diverged or spiked) / finished runs (completed or diverged), per (optimizer,
clipping, lr); jobs not finished (no summary.json, failed, interrupted) are left out of it and counted apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients.figures.plots import (
    CLIP_COLORS, PAGE_WIDTH, COLUMN_WIDTH, FigureResult, FigureSkipped, new_figure, save_figure, suptitle,
)
from rnn_gradients.figures.runs import Run, select, sort_key

LOSS_TAG = "train/loss"
SPIKE_LOSS_MULTIPLE = 3.0
WARMUP_FRACTION = 0.1


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def divergence_outcome(run: Run) -> dict[str, Any]:
    """{'diverged', 'nonfinite_loss', 'spiked', 'max_train_loss_after_warmup', 'diverged_or_spiked'}; the last
    is None when the run is not finished (no summary.json, failed or interrupted)."""
    summary = run.summary or {}
    nonfinite = any(v is not None and not math.isfinite(v)
                    for v in (_float(summary.get("train_loss")), _float(summary.get("val_loss"))))
    series = run.scalar(LOSS_TAG)
    baseline = _float(run.get("baseline_loss"))
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
    elif _float(summary.get("train_loss")) is not None and math.isfinite(_float(summary.get("train_loss"))):
        max_after = _float(summary.get("train_loss"))
    spiked = None
    if max_after is not None and baseline is not None:
        spiked = max_after > SPIKE_LOSS_MULTIPLE * baseline
    diverged = bool(summary.get("diverged")) or summary.get("status") == "diverged" or nonfinite
    outcome = bool(diverged or spiked) if run.usable else None
    return {"diverged": diverged, "nonfinite_loss": nonfinite, "spiked": spiked,
            "max_train_loss_after_warmup": max_after, "diverged_or_spiked": outcome}


def divergence_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per (optimizer, clipping, lr) of the exploding experiment."""
    chosen = select(runs, usable=False, experiment="exploding")
    keys = sorted({(r.get("optimizer"), r.get("clipping"), r.get("lr")) for r in chosen},
                  key=lambda k: tuple(sort_key(x) for x in k))
    rows = []
    for optimizer, clipping, lr in keys:
        group = [r for r in chosen if (r.get("optimizer"), r.get("clipping"), r.get("lr")) == (optimizer, clipping, lr)]
        outcomes = [divergence_outcome(r) for r in group if r.usable]
        n = len(outcomes)
        n_bad = sum(bool(o["diverged_or_spiked"]) for o in outcomes)
        val = [_float(r.summary.get("val_normalized_loss")) for r in group if r.usable]
        val = [v for v in val if v is not None and not math.isnan(v)]
        rows.append({
            "optimizer": optimizer, "clipping": clipping, "lr": lr, "n_runs": n,
            "n_diverged": sum(o["diverged"] for o in outcomes),
            "n_spiked": sum(bool(o["spiked"]) for o in outcomes),
            "n_diverged_or_spiked": n_bad,
            "fraction": n_bad / n if n else None,
            "n_not_finished": len(group) - n,
            "median_val_normalized_loss": float(np.median(val)) if val else None,
        })
    return rows


def plot_divergence_vs_lr(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    rows = [r for r in divergence_table(runs) if r["n_runs"] and r["lr"] is not None]
    if not rows:
        raise FigureSkipped("needs finished exploding-experiment runs "
                            "(python -m rnn_gradients.train -m experiment=exploding)")
    optimizers = sorted({r["optimizer"] for r in rows}, key=sort_key)
    fig, axes = new_figure(PAGE_WIDTH if len(optimizers) > 1 else COLUMN_WIDTH, 2.7, 1, len(optimizers), sharey=True)
    modes = sorted({r["clipping"] for r in rows}, key=lambda m: (["none", "norm", "value"] + [m]).index(m))
    n_seeds = sorted({r["n_runs"] for r in rows})
    for ax, optimizer in zip(axes[0], optimizers):
        for k, mode in enumerate(modes):
            pts = sorted((r for r in rows if r["optimizer"] == optimizer and r["clipping"] == mode), key=lambda r: r["lr"])
            if not pts:
                continue
            lrs = np.array([p["lr"] for p in pts], dtype=float)
            frac = np.array([p["fraction"] for p in pts], dtype=float)
            offset = 1 + 0.04 * (k - (len(modes) - 1) / 2)  # keep overlapping lines apart
            ax.plot(lrs * offset, frac, marker="o", ms=3.5, color=CLIP_COLORS.get(mode, "#7f7f7f"),
                    label=f"clipping: {mode}")
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("learning rate")
        ax.set_title(f"LSTM, {optimizer}")
    axes[0, 0].set_ylabel("fraction diverged or spiked")
    axes[0, 0].legend(loc="upper left")
    seeds = f"{n_seeds[0]} seed{'' if n_seeds[0] == 1 else 's'}" if len(n_seeds) == 1 else f"{n_seeds[0]}–{n_seeds[-1]} seeds"
    suptitle(fig, f"Runs that diverged or spiked, against learning rate ({seeds} per point)")
    files = save_figure(fig, out_dir, "divergence_vs_lr")
    caption = (f"Exploding experiment: fraction of seeds that diverged (summary diverged or a non-finite loss) or "
               f"spiked (max train/loss after the first {WARMUP_FRACTION:.0%} of steps > {SPIKE_LOSS_MULTIPLE:g} x "
               f"baseline_loss), against learning rate.")
    return FigureResult("divergence_vs_lr", files, {"rows": rows}, caption)
