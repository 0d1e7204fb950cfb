"""Figure learning_curves: validation loss / memoryless baseline against training step for the compared
runs (analysis.selection.comparison_runs: the arms experiment, else a plain multirun), one panel per
(task, seq_len), one line per arm present = median over seeds, band = min..max.
Each task row has its own y axis, log only where its values span decades (style.wants_log_scale): arms
that all end near the baseline differ by less than a decade, a gap a shared log axis would flatten. A
linear row is cut at LINEAR_TOP: a task such as copy can start above the baseline while the network learns
to predict the blanks, and those first points would squeeze the rest.
The numbers: rnn_gradients.analysis.figure_data.learning_curve_data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import Run, learning_curve_data, sort_key
from rnn_gradients.analysis.selection import comparison_runs, comparison_source
from rnn_gradients.figures.style import (
    BASELINE_LABEL, MULTIRUN_HINT, PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, arm_linestyle, finite,
    integer_steps, memoryless_baseline, new_figure, save_figure, suptitle, wants_log_scale,
)

NAME = "learning_curves"
LINEAR_TOP = 1.25  # × baseline: the top of a linear (copy) row
TAGS = frozenset({contract.VAL_NORMALIZED_LOSS})


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = learning_curve_data(runs)
    if not data:
        raise FigureSkipped(f"needs finished runs of a multirun with {contract.VAL_NORMALIZED_LOSS} in their event "
                            f"files ({MULTIRUN_HINT})")
    tasks = sorted({k[0] for k in data}, key=sort_key)
    seq_lens = sorted({k[1] for k in data}, key=sort_key)
    ncols = len(seq_lens)
    fig, axes = new_figure(min(PAGE_WIDTH, 1.2 + 1.9 * ncols), 0.5 + 1.9 * len(tasks), len(tasks), ncols,
                           sharex=False, sharey="row")
    n_max = 0
    for i, task in enumerate(tasks):
        row = [a for (t, _), p in data.items() if t == task for a in p.values()]
        log_y = wants_log_scale(np.concatenate([np.concatenate([a["lo"], a["hi"]]) for a in row] + [[1.0]]))
        for j, seq_len in enumerate(seq_lens):
            ax = axes[i, j]
            panel = data.get((task, seq_len))
            if panel is None:
                ax.set_visible(False)
                continue
            for arm, agg in panel.items():
                color = arm_color(arm)
                n_max = max(n_max, len(agg["seeds"]))
                ax.plot(agg["steps"], finite(agg["median"]), color=color, ls=arm_linestyle(arm), label=arm,
                        marker="." if len(agg["steps"]) < 4 else None)
                ax.fill_between(agg["steps"], finite(agg["lo"]), finite(agg["hi"]), color=color, alpha=0.2, lw=0)
            memoryless_baseline(ax, label=(i == 0 and j == 0))
            if log_y:
                ax.set_yscale("log")
            elif max(np.nanmax(finite(a["hi"])) for a in row) > LINEAR_TOP:
                ax.set_ylim(top=LINEAR_TOP)
            ax.set_title(f"{task}, T={seq_len}")
            integer_steps(ax, max_ticks=5)
            if i == len(tasks) - 1:
                ax.set_xlabel("training step")
            if j == 0:
                ax.set_ylabel("val loss / baseline")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    order = sorted(range(len(labels)), key=lambda k: labels[k] == BASELINE_LABEL)  # baseline last
    fig.legend([handles[k] for k in order], [labels[k] for k in order], loc="outside lower center", ncol=len(labels))
    seed_text = f"median over seeds (up to {n_max}), band = min–max" if n_max > 1 else "one seed per arm"
    suptitle(fig, f"Validation loss normalized by the memoryless baseline ({seed_text})")
    files = save_figure(fig, out_dir, NAME)
    return FigureResult(NAME, files, {"panels": data},
                        f"{contract.VAL_NORMALIZED_LOSS} of the {comparison_source(comparison_runs(runs))}; "
                        f"{seed_text}; 1 = memoryless baseline.")
