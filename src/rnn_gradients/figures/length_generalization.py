"""Figure length_generalization: what the trained runs know at other lengths, from their eval.json
(`python -m rnn_gradients.evaluate <sweep dir>`): the normalized validation loss against the evaluated T,
one panel per task, one line per arm and trained T (median over seeds, bars = min–max), the trained T
marked by a hollow marker. 1 = memoryless baseline. The numbers: analysis.eval_data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import Run
from rnn_gradients.analysis.eval_data import length_generalization_data
from rnn_gradients.figures.style import (
    PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, arm_linestyle, finite, memoryless_baseline, new_figure,
    save_figure, suptitle, wants_log_scale,
)

NAME = "length_generalization"
TAGS: frozenset[str] = frozenset()  # eval.json only


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = length_generalization_data(runs)
    if not data:
        raise FigureSkipped(f"needs finished runs with an {contract.EVAL_FILE} (python -m rnn_gradients.evaluate <sweep dir>)")
    tasks = list(data)
    fig, axes = new_figure(min(PAGE_WIDTH, 0.6 + 2.9 * len(tasks)), 2.8, 1, len(tasks))
    for ax, task in zip(axes[0], tasks):
        values, ticks = [1.0], set()
        for arm, entry in data[task].items():
            for k, trained in enumerate(sorted(entry["trained"])):  # one line per trained T, one legend entry per arm
                rows = [row for (t0, _), row in sorted(entry["points"].items()) if t0 == trained and row["median_normalized_loss"] is not None]
                if not rows:
                    continue
                ts = np.array([r["seq_len"] for r in rows], dtype=float)
                med = np.array([r["median_normalized_loss"] for r in rows])
                lo, hi = np.array([r["min_normalized_loss"] for r in rows]), np.array([r["max_normalized_loss"] for r in rows])
                label = arm if k == 0 else None
                ax.errorbar(ts, finite(med), yerr=[finite(med - lo), finite(hi - med)], color=arm_color(arm), marker="o",
                            ms=3.5, capsize=2, lw=1.1, ls=arm_linestyle(arm), label=label)
                at_trained = ts == trained
                ax.plot(ts[at_trained], med[at_trained], "o", ms=8, mfc="none", color=arm_color(arm))
                values += list(lo) + list(hi)
                ticks.update(int(t) for t in ts)
        memoryless_baseline(ax)
        ax.set_xscale("log")
        ax.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
        ax.minorticks_off()
        if wants_log_scale(values):
            ax.set_yscale("log")
        ax.set_xlabel("evaluated sequence length T")
        ax.set_title(f"{task} task")
    axes[0, 0].set_ylabel("val loss / baseline")
    axes[0, -1].legend(loc="upper left", fontsize="x-small")
    suptitle(fig, "Trained networks at other lengths (median over seeds, min–max; hollow: the trained T)")
    files = save_figure(fig, out_dir, NAME)
    return FigureResult(NAME, files, {"tasks": {t: list(a) for t, a in data.items()}},
                        f"Normalized validation loss at each evaluated T ({contract.EVAL_FILE} of each run's final "
                        "checkpoint on its own validation set), median over seeds; hollow marker = the trained T.")
