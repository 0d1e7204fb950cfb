"""Figure divergence_vs_lr: how often training blows up against the learning rate (exploding experiment): the
fraction of finished seeds that diverged or had a loss excursion (a training loss above a multiple of the
baseline), per optimizer and clipping mode. The rules and the numbers: analysis.divergence_rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import EXCURSION_LOSS_MULTIPLE, WARMUP_FRACTION, Run, divergence_table, select, sort_key
from rnn_gradients.analysis.divergence_rules import exploding_runs
from rnn_gradients.analysis.selection import cell_labels
from rnn_gradients.figures.style import (
    CLIP_COLORS, COLUMN_WIDTH, OTHER_COLOR, PAGE_WIDTH, FigureResult, FigureSkipped, new_figure, save_figure, suptitle,
)

NAME = "divergence_vs_lr"
TAGS = frozenset({contract.TRAIN_LOSS})


def _cells(runs: Sequence[Run], optimizer: str) -> str:
    """The cells this optimizer's exploding runs trained, from their own arm labels (for the panel title)."""
    return cell_labels(select(exploding_runs(runs, usable=False), usable=False, optimizer=optimizer))


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
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
            ax.plot(lrs * offset, frac, marker="o", ms=3.5, color=CLIP_COLORS.get(mode, OTHER_COLOR),
                    label=f"clipping: {mode}")
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("learning rate")
        ax.set_title(f"{_cells(runs, optimizer)}, {optimizer}")
    axes[0, 0].set_ylabel("fraction diverged or loss excursion")
    axes[0, 0].legend(loc="upper left")
    seeds = f"{n_seeds[0]} seed{'' if n_seeds[0] == 1 else 's'}" if len(n_seeds) == 1 else f"{n_seeds[0]}–{n_seeds[-1]} seeds"
    suptitle(fig, f"Runs that diverged or had a loss excursion, against learning rate ({seeds} per point)")
    files = save_figure(fig, out_dir, NAME)
    caption = (f"Exploding experiment: fraction of seeds that diverged (summary diverged or a non-finite loss) or "
               f"had a loss excursion (max {contract.TRAIN_LOSS} after the first {WARMUP_FRACTION:.0%} of steps > "
               f"{EXCURSION_LOSS_MULTIPLE:g} x baseline_loss), against learning rate.")
    return FigureResult(NAME, files, {"rows": rows}, caption)
