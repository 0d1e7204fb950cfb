"""Figures 3 and 5: validation loss (normalized by the memoryless baseline) of the arms experiment.

learning_curves: val/normalized_loss against training step, one panel per (task, seq_len), one line
    per arm = the median over seeds at each logged step, band = min..max over seeds.
loss_vs_seq_len: the final val_normalized_loss of summary.json against seq_len, one panel per task,
    median over seeds with min..max error bars.
A value of 1 is the memoryless baseline (predicting without memory); below 1 the model remembers.
NaN values (missing) are left out of the medians; ±inf (a blown-up run) is kept, so a diverged seed
pulls the median up rather than vanishing from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients.figures.plots import (
    PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, arm_linestyle, arm_sort_key, finite, integer_steps, new_figure,
    save_figure, suptitle, wants_log_scale,
)
from rnn_gradients.figures.runs import Run, select, sort_key

VAL_TAG = "val/normalized_loss"


def aggregate_curves(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Median and min..max over runs at each step logged by any of them.

    Returns {'steps', 'median', 'lo', 'hi', 'n'}; 'n' = how many runs have a (non-NaN) value there.
    """
    series = [(np.asarray(s, dtype=np.int64), np.asarray(v, dtype=float)) for s, v in series if len(s)]
    if not series:
        empty = np.zeros(0)
        return {"steps": empty.astype(np.int64), "median": empty, "lo": empty, "hi": empty, "n": empty.astype(int)}
    steps = np.unique(np.concatenate([s for s, _ in series]))
    matrix = np.full((len(series), len(steps)), np.nan)
    for i, (s, v) in enumerate(series):
        matrix[i, np.searchsorted(steps, s)] = v
    present = ~np.isnan(matrix)
    n = present.sum(axis=0)
    median = np.full(len(steps), np.nan)
    lo, hi = median.copy(), median.copy()
    for j in np.flatnonzero(n):
        column = matrix[present[:, j], j]
        median[j], lo[j], hi[j] = np.median(column), column.min(), column.max()
    return {"steps": steps, "median": median, "lo": lo, "hi": hi, "n": n}


def summarize_values(values: Sequence[Any]) -> dict[str, Any]:
    """Median, min, max and count over the non-missing values (None / NaN are missing)."""
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def learning_curve_data(runs: Sequence[Run]) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    """{(task, seq_len): {arm: aggregate_curves(...) + {'seeds': [...]}}} for the arms experiment."""
    data: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    chosen = [r for r in select(runs, experiment="arms") if r.scalar(VAL_TAG) is not None]
    keys = sorted({(r.get("task"), r.get("seq_len")) for r in chosen}, key=lambda k: (sort_key(k[0]), sort_key(k[1])))
    for task, seq_len in keys:
        panel = {}
        for arm in sorted({r.get("arm") for r in chosen}, key=arm_sort_key):
            group = select(chosen, task=task, seq_len=seq_len, arm=arm)
            if group:
                agg = aggregate_curves([r.scalar(VAL_TAG) for r in group])
                agg["seeds"] = sorted((r.get("seed") for r in group), key=sort_key)
                panel[arm] = agg
        data[(task, seq_len)] = panel
    return data


def _baseline_line(ax, label: bool) -> None:
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label="memoryless baseline" if label else None)


def plot_learning_curves(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = learning_curve_data(runs)
    if not data:
        raise FigureSkipped(f"needs arms-experiment runs with {VAL_TAG} in their event files "
                            "(python -m rnn_gradients.train -m experiment=arms)")
    tasks = sorted({k[0] for k in data}, key=sort_key)
    seq_lens = sorted({k[1] for k in data}, key=sort_key)
    ncols = len(seq_lens)
    fig, axes = new_figure(min(PAGE_WIDTH, 1.2 + 1.9 * ncols), 0.5 + 1.9 * len(tasks), len(tasks), ncols,
                           sharex=False, sharey=True)
    every = np.concatenate([np.concatenate([a["lo"], a["hi"]]) for p in data.values() for a in p.values()])
    log_y = wants_log_scale(np.append(every, 1.0))
    n_max = 0
    for i, task in enumerate(tasks):
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
            _baseline_line(ax, label=(i == 0 and j == 0))
            if log_y:
                ax.set_yscale("log")
            ax.set_title(f"{task}, T={seq_len}")
            integer_steps(ax)
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
    order = sorted(range(len(labels)), key=lambda k: labels[k] == "memoryless baseline")  # baseline last
    fig.legend([handles[k] for k in order], [labels[k] for k in order], loc="outside lower center", ncol=len(labels))
    seed_text = f"median over seeds (up to {n_max}), band = min–max" if n_max > 1 else "one seed per arm"
    suptitle(fig, f"Validation loss normalized by the memoryless baseline ({seed_text})")
    files = save_figure(fig, out_dir, "learning_curves")
    return FigureResult("learning_curves", files, {"panels": data},
                        f"{VAL_TAG} of the arms experiment; {seed_text}; 1 = memoryless baseline.")


def loss_vs_seq_len_data(runs: Sequence[Run]) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """{task: {arm: {seq_len: summarize_values(final val_normalized_loss over seeds)}}} (arms experiment)."""
    data: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    chosen = [r for r in select(runs, experiment="arms") if r.get("task") and r.get("seq_len") is not None]
    for task in sorted({r.get("task") for r in chosen}, key=sort_key):
        per_arm: dict[str, dict[int, dict[str, Any]]] = {}
        for arm in sorted({r.get("arm") for r in chosen}, key=arm_sort_key):
            points = {}
            for seq_len in sorted({r.get("seq_len") for r in chosen}, key=sort_key):
                group = select(chosen, task=task, arm=arm, seq_len=seq_len)
                if group:
                    points[seq_len] = summarize_values([r.summary.get("val_normalized_loss") for r in group])
                    points[seq_len]["seeds"] = len(group)
            if points:
                per_arm[arm] = points
        data[task] = per_arm
    return data


def plot_loss_vs_seq_len(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = loss_vs_seq_len_data(runs)
    if not data:
        raise FigureSkipped("needs completed arms-experiment runs (summary.json with val_normalized_loss; "
                            "python -m rnn_gradients.train -m experiment=arms)")
    tasks = list(data)
    fig, axes = new_figure(min(PAGE_WIDTH, 0.6 + 2.9 * len(tasks)), 2.8, 1, len(tasks), sharey=True)
    values = [p[k] for d in data.values() for pts in d.values() for p in pts.values() for k in ("min", "max")
              if p[k] is not None]
    log_y = wants_log_scale(values + [1.0])
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
        _baseline_line(ax, label=True)
        ax.set_xscale("log")
        ticks = sorted(all_t)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("sequence length T (time steps)")
        ax.set_title(f"{task} task")
    axes[0, 0].set_ylabel("final val loss / baseline")
    axes[0, 0].legend(loc="best")
    seed_text = f"median over up to {n_max} seeds, bars = min–max" if n_max > 1 else "one seed per point"
    suptitle(fig, f"Final validation loss against sequence length ({seed_text})")
    files = save_figure(fig, out_dir, "loss_vs_seq_len")
    return FigureResult("loss_vs_seq_len", files, {"tasks": data},
                        f"Final val_normalized_loss (summary.json) of the arms experiment; {seed_text}.")
