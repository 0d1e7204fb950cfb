"""Figure grad_norm_training: the total pre-clip gradient norm (contract.PRECLIP_NORM) during training,
every arm of the compared runs (analysis.selection.comparison_runs: the arms experiment, else a plain
multirun), one run per arm (the same seed in all where possible), the clip threshold drawn and the spikes
(analysis.spikes) marked. The numbers: analysis.figure_data.grad_norm_data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import SPIKE_FACTOR, SPIKE_WINDOW, Run, grad_norm_data, sort_key
from rnn_gradients.figures.style import (
    COLUMN_WIDTH, MULTIRUN_HINT, FigureResult, FigureSkipped, arm_color, arm_linestyle, finite, integer_steps,
    new_figure, save_figure,
)

NAME = "grad_norm_training"
TAGS = frozenset({contract.PRECLIP_NORM})
LEGEND_LINE = 0.12  # inches per legend entry (6 pt)


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = grad_norm_data(runs)
    if not data or not data["arms"]:
        raise FigureSkipped(f"needs finished runs of a multirun with {contract.PRECLIP_NORM} in their event files "
                            f"({MULTIRUN_HINT})")
    # one legend line per arm below the axes: the figure grows with them, the axes keep their height
    fig, axes = new_figure(COLUMN_WIDTH + 0.5, 2.56 + LEGEND_LINE * len(data["arms"]))
    ax = axes[0, 0]
    seeds = sorted({a["seed"] for a in data["arms"].values()}, key=sort_key)
    spike_label_done = False
    for arm, a in data["arms"].items():
        color = arm_color(arm)
        values = finite(a["values"])
        values[values <= 0] = np.nan
        n_spikes = int(a["spikes"].sum())
        ax.plot(a["steps"], values, color=color, lw=0.7, alpha=0.9, ls=arm_linestyle(arm),
                label=f"{arm} ({n_spikes} spike{'' if n_spikes == 1 else 's'})")
        if a["spikes"].any():
            ax.plot(a["steps"][a["spikes"]], values[a["spikes"]], "v", color=color, mec="k", mew=0.4, ms=4.5,
                    label=None if spike_label_done else f"spike: > {SPIKE_FACTOR:g}× running median of previous {SPIKE_WINDOW} steps")
            spike_label_done = True
    thresholds = {a["threshold"] for arm, a in data["arms"].items()
                  if str(arm).endswith(contract.CLIP_SUFFIX) and a["threshold"] is not None}
    for theta in sorted(thresholds):
        ax.axhline(theta, color="k", ls="--", lw=0.8, label=f"clip threshold θ = {theta:g}")
    if not spike_label_done:
        ax.plot([], [], "v", color="gray", mec="k", mew=0.4, ms=4.5,
                label=f"spike: > {SPIKE_FACTOR:g}× running median of previous {SPIKE_WINDOW} steps (none)")
    ax.set_yscale("log")
    integer_steps(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel(r"pre-clip gradient norm $\|g\|_2$")
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    ax.set_title(f"Total gradient norm before clipping\n{data['task']}, T={data['seq_len']}, {seed_text}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, fontsize=6)
    files = save_figure(fig, out_dir, NAME)
    caption = (f"{contract.PRECLIP_NORM} of one run per arm ({', '.join(data['arms'])}; {data['source']}, "
               f"{data['task']}, T={data['seq_len']}, {seed_text}); "
               + ("dashed: the clip threshold; " if thresholds else "")
               + f"triangles: spikes (> {SPIKE_FACTOR:g}x the running median of the previous "
               f"{SPIKE_WINDOW} steps).")
    return FigureResult(NAME, files, data, caption)
