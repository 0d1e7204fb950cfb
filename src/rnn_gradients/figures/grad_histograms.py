"""Figure grad_histograms: the distribution of the recurrent weight's gradient over training, one heat
map per arm of the compared runs (analysis.selection.comparison_runs: the arms experiment, else a plain
multirun): rows = training steps, colour = count per bin on a log scale, the x axis symmetric-log (bins
are equally wide on it; the grid: analysis.histogram_grid). The numbers: analysis.figure_data.grad_histogram_data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullLocator

from rnn_gradients.analysis import GRID_BINS, RECURRENT_WEIGHT, W_HH_HIST_TAG, Run, grad_histogram_data
from rnn_gradients.figures.style import (
    MULTIRUN_HINT, PAGE_WIDTH, FigureResult, FigureSkipped, integer_steps, new_figure, save_figure, suptitle,
)

NAME = "grad_histograms"
TAGS = frozenset({W_HH_HIST_TAG})


def symlog_ticks(max_abs: float, linthresh: float) -> list[float]:
    """0 and ±powers of ten between linthresh and max_abs, at most 2 per side."""
    top = int(np.floor(np.log10(max_abs)))
    powers = [10.0 ** k for k in range(top, top - 8, -1) if 10.0 ** k >= 2 * linthresh][:4]
    chosen = powers[::2] if len(powers) > 2 else powers
    return sorted([-p for p in chosen] + [0.0] + chosen)


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    exponent = int(round(np.log10(abs(value))))
    return f"{'−' if value < 0 else ''}$10^{{{exponent}}}$"


def _row_edges(steps: np.ndarray) -> np.ndarray:
    if len(steps) == 1:
        return np.array([steps[0] - 0.5, steps[0] + 0.5])
    mid = (steps[1:] + steps[:-1]) / 2
    first = max(0.0, steps[0] - (mid[0] - steps[0]))
    return np.concatenate([[first], mid, [steps[-1] + (steps[-1] - mid[-1])]])


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = grad_histogram_data(runs)
    if not data:
        raise FigureSkipped(f"needs finished runs of a multirun with {W_HH_HIST_TAG} histograms in their event "
                            f"files ({MULTIRUN_HINT})")
    arms = list(data["arms"])
    fig, axes = new_figure(PAGE_WIDTH if len(arms) > 1 else 3.8, 2.8, 1, len(arms), sharex=True)
    positive = np.concatenate([a["counts"][a["counts"] > 0] for a in data["arms"].values()])
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = max(float(positive.min()) if positive.size else 1e-3, vmax * 1e-5)
    norm = LogNorm(vmin=vmin, vmax=vmax)
    mesh = None
    for ax, arm in zip(axes[0], arms):
        a = data["arms"][arm]
        counts = np.ma.masked_less_equal(a["counts"], 0)
        mesh = ax.pcolormesh(data["grid"], _row_edges(a["steps"]), counts, norm=norm, cmap="magma", shading="flat",
                             rasterized=True)
        ax.set_xscale("symlog", linthresh=data["linthresh"], linscale=0.5)
        ax.set_xlim(data["grid"][0], data["grid"][-1])
        ticks = symlog_ticks(data["grid"][-1], data["linthresh"])
        ax.set_xticks(ticks, [_tick_label(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        if len(a["steps"]) <= 6:
            ax.set_yticks(a["steps"], [f"{s:g}" for s in a["steps"]])
        else:
            integer_steps(ax, "y")
        ax.grid(False)
        n = a["n_histograms"]
        ax.set_title(f"{arm} (seed {a['seed']}, {n} histogram{'' if n == 1 else 's'})")
        ax.set_xlabel(r"gradient value of $W_{hh}$ (symlog)")
    axes[0, 0].set_ylabel("training step")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0, :].tolist(), label="count per bin (log scale)", shrink=0.9)
    suptitle(fig, f"Pre-clip gradient of {RECURRENT_WEIGHT} over training ({data['task']}, T={data['seq_len']})")
    files = save_figure(fig, out_dir, NAME)
    caption = (f"{W_HH_HIST_TAG} of one run per arm ({data['source']}, {data['task']}, T={data['seq_len']}, "
               "first seed), "
               f"re-binned onto a common symmetric-log grid of {GRID_BINS} bins over ±{data['grid'][-1]:.3g} "
               f"(linear within ±{data['linthresh']:.3g}).")
    return FigureResult(NAME, files, data, caption)
