"""Figure 7: the distribution of the recurrent weight's gradient over training, one heat map per arm.

Each logged histogram (grad_hist/rnn.weight_hh_l0, pre-clip) has its own bucket edges (min..max of
that step). All of them are re-binned onto one common grid over the global ±max|value| of the figure,
assuming counts are uniform within each source bucket (the total count is preserved). The grid is
symmetric-log: linear within ±linthresh, logarithmic beyond, with linthresh = the finest source bucket
width (what the logged histograms can resolve), but at least max|value| / 10^MAX_DECADES. So a few
exploding steps with a wide range do not squash the ordinary steps into one bin. Rows = training
steps, colour = count per bin on a log scale (bins are equally wide on the displayed axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients.figures.events import Histogram
from rnn_gradients.figures.plots import (
    PAGE_WIDTH, FigureResult, FigureSkipped, arm_sort_key, integer_steps, new_figure, save_figure, suptitle,
)
from rnn_gradients.figures.runs import Run, choose_setting, first_seed, select

HIST_TAG = "grad_hist/rnn.weight_hh_l0"
GRID_BINS = 120
MAX_DECADES = 4


def rebin(edges: np.ndarray, counts: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Counts of a histogram with bucket edges `edges` (B+1,) re-distributed onto `new_edges` (N+1,).

    Within a source bucket the count is spread uniformly; a zero-width bucket is a point mass, put in
    the new bin that contains it (the last bin includes its right edge). Mass outside new_edges is dropped.
    """
    edges, counts, new_edges = (np.asarray(a, dtype=float) for a in (edges, counts, new_edges))
    out = np.zeros(len(new_edges) - 1)
    widths = np.diff(edges)
    wide = widths > 0
    if wide.any():
        lo, hi, c = edges[:-1][wide], edges[1:][wide], counts[wide]
        overlap = np.clip(np.minimum(hi[:, None], new_edges[None, 1:]) - np.maximum(lo[:, None], new_edges[None, :-1]), 0, None)
        out += (c[:, None] * overlap / (hi - lo)[:, None]).sum(axis=0)
    if (~wide).any():
        points, c = edges[1:][~wide], counts[~wide]
        inside = (points >= new_edges[0]) & (points <= new_edges[-1])
        index = np.clip(np.searchsorted(new_edges, points[inside], side="right") - 1, 0, len(out) - 1)
        np.add.at(out, index, c[inside])
    return out


def symlog_edges(max_abs: float, linthresh: float, bins: int = GRID_BINS) -> np.ndarray:
    """Bin edges over [-max_abs, max_abs], uniform in asinh(v / linthresh)."""
    u = np.linspace(-np.arcsinh(max_abs / linthresh), np.arcsinh(max_abs / linthresh), bins + 1)
    edges = linthresh * np.sinh(u)
    edges[0], edges[-1] = -max_abs, max_abs
    return edges


def common_grid(histograms: Sequence[Histogram], bins: int = GRID_BINS) -> tuple[np.ndarray, float]:
    """(edges, linthresh) of the grid every histogram is re-binned onto (see the module docstring)."""
    max_abs = max(max(abs(h.min), abs(h.max)) for h in histograms)
    if not max_abs > 0:
        return np.linspace(-1.0, 1.0, bins + 1), 1.0
    widths = [np.diff(h.edges)[np.diff(h.edges) > 0].min() for h in histograms if np.any(np.diff(h.edges) > 0)]
    finest = min(widths) if widths else max_abs
    linthresh = min(max_abs, max(finest, max_abs / 10 ** MAX_DECADES))
    return symlog_edges(max_abs, linthresh, bins), linthresh


def symlog_ticks(max_abs: float, linthresh: float) -> list[float]:
    """0 and ±powers of ten between linthresh and max_abs, at most 2 per side."""
    top = int(np.floor(np.log10(max_abs)))
    powers = [10.0 ** k for k in range(top, top - 8, -1) if 10.0 ** k >= 2 * linthresh][:4]
    chosen = powers[::2] if len(powers) > 2 else powers
    return sorted([-p for p in chosen] + [0.0] + chosen)


def heatmap(histograms: Sequence[Histogram], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps (S,), counts (S, N)) of the histograms re-binned onto `grid`."""
    steps = np.array([h.step for h in histograms], dtype=float)
    return steps, np.stack([rebin(h.edges, h.counts, grid) for h in histograms])


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


def grad_histogram_data(runs: Sequence[Run]) -> dict[str, Any]:
    """{'task', 'seq_len', 'grid', 'linthresh', 'arms': {arm: {'run', 'seed', 'steps', 'counts', 'n_histograms'}}}."""
    candidates = [r for r in select(runs, experiment="arms")
                  if r.events is not None and r.events.histograms.get(HIST_TAG)]
    setting = choose_setting(candidates)
    if setting is None:
        return {}
    task, seq_len = setting
    chosen = {}
    for arm in sorted({r.get("arm") for r in candidates}, key=arm_sort_key):
        run = first_seed(select(candidates, arm=arm, task=task, seq_len=seq_len))
        if run is not None:
            chosen[arm] = run
    hists = {arm: [h for h in run.events.histograms[HIST_TAG] if h.num > 0 and np.isfinite(h.min) and np.isfinite(h.max)]
             for arm, run in chosen.items()}
    hists = {arm: hs for arm, hs in hists.items() if hs}
    if not hists:
        return {}
    grid, linthresh = common_grid([h for hs in hists.values() for h in hs])
    data = {"task": task, "seq_len": seq_len, "grid": grid, "linthresh": linthresh, "arms": {}}
    for arm, hs in hists.items():
        steps, counts = heatmap(hs, grid)
        data["arms"][arm] = {"run": str(chosen[arm].path), "seed": chosen[arm].get("seed"), "steps": steps,
                             "counts": counts, "n_histograms": len(hs)}
    return data


def plot_grad_histograms(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = grad_histogram_data(runs)
    if not data:
        raise FigureSkipped(f"needs arms-experiment runs with {HIST_TAG} histograms in their event files "
                            "(python -m rnn_gradients.train -m experiment=arms)")
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import NullLocator

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
    suptitle(fig, f"Pre-clip gradient of rnn.weight_hh_l0 over training ({data['task']}, T={data['seq_len']})")
    files = save_figure(fig, out_dir, "grad_histograms")
    caption = (f"{HIST_TAG} of one run per arm (arms experiment, {data['task']}, T={data['seq_len']}, first seed), "
               f"re-binned onto a common symmetric-log grid of {GRID_BINS} bins over ±{data['grid'][-1]:.3g} "
               f"(linear within ±{data['linthresh']:.3g}).")
    return FigureResult("grad_histograms", files, data, caption)
