"""Figure loss_vs_seq_len: the final val_normalized_loss of each run's summary against seq_len, one
panel per task, one line per arm present, median over seeds with min..max error bars, for the compared
runs (analysis.selection.comparison_runs: the arms experiment, else a plain multirun). 1 = memoryless baseline.
Each task has its own y axis, log only where its values span decades (style.wants_log_scale): arms that
all end near the baseline differ by less than a decade, a gap another task's log axis would flatten.
The numbers: rnn_gradients.analysis.figure_data.loss_vs_seq_len_data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import Run, loss_vs_seq_len_data
from rnn_gradients.analysis.selection import comparison_runs, comparison_source
from rnn_gradients.figures.style import (
    MULTIRUN_HINT, PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, arm_linestyle, finite, memoryless_baseline,
    new_figure, save_figure, suptitle, wants_log_scale,
)

NAME = "loss_vs_seq_len"
TAGS: frozenset[str] = frozenset()  # the summaries only


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = loss_vs_seq_len_data(runs)
    if not data:
        raise FigureSkipped(f"needs finished runs of a multirun ({contract.SUMMARY_FILE} with val_normalized_loss; "
                            f"{MULTIRUN_HINT})")
    tasks = list(data)
    fig, axes = new_figure(min(PAGE_WIDTH, 0.6 + 2.9 * len(tasks)), 2.8, 1, len(tasks))
    n_max = max((p["seeds"] for d in data.values() for pts in d.values() for p in pts.values()), default=0)
    for ax, task in zip(axes[0], tasks):
        all_t = set()
        for k, (arm, points) in enumerate(data[task].items()):
            ts = np.array([t for t in points if points[t]["median"] is not None], dtype=float)
            all_t.update(points)
            if ts.size == 0:
                continue
            med = np.array([points[t]["median"] for t in ts])
            lo = np.array([points[t]["min"] for t in ts])
            hi = np.array([points[t]["max"] for t in ts])
            shift = 1 + 0.02 * (k - (len(data[task]) - 1) / 2)  # small offsets so error bars do not overlap
            ax.errorbar(ts * shift, finite(med), yerr=[finite(med - lo), finite(hi - med)], color=arm_color(arm),
                        marker="o", ms=3.5, capsize=2, lw=1.1, ls=arm_linestyle(arm), label=arm)
        memoryless_baseline(ax)
        values = [p[k] for pts in data[task].values() for p in pts.values() for k in ("min", "max") if p[k] is not None]
        log_y = wants_log_scale(values + [1.0])
        ax.set_xscale("log")
        ticks = sorted(all_t)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("sequence length T (time steps)")
        ax.set_title(f"{task} task")
    for ax in axes[0]:
        ax.set_ylabel("final val loss / baseline")
    axes[0, 0].legend(loc="best")
    seed_text = f"median over up to {n_max} seeds, bars = min–max" if n_max > 1 else "one seed per point"
    suptitle(fig, f"Final validation loss against sequence length ({seed_text})")
    files = save_figure(fig, out_dir, NAME)
    return FigureResult(NAME, files, {"tasks": data},
                        f"Final val_normalized_loss ({contract.SUMMARY_FILE}) of the "
                        f"{comparison_source(comparison_runs(runs))}; {seed_text}.")
