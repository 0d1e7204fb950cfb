"""Figure recurrent_spectrum: σ_max of the recurrent matrix against training step, beside Pascanu et al.'s
(2013) bound 1/γ (σ_max < 1/γ for every block: the gradient must vanish; σ_max > 1/γ for a block: it may
explode). 1/γ is 1 for tanh and ReLU blocks and 4 for sigmoid gates (γ = max φ').

Left: the cures experiment, one task (the first in registry order, at the cures table's T), per cell the
median over seeds (band: min–max); a gated cell has one line per value of 1/γ, the max over its blocks with
that bound (solid: the tanh block against 1; dashed: the max of the sigmoid gates against 4).
Right: the exploding sweep's unclipped run that blows up (SGD, the largest lr) beside its norm-clipped twin
(same lr and seed): σ_max of each LSTM block against step, the first uphill step (loss_cliff.npz) and the
divergence step (summary.json) marked. A part whose runs are absent is left out; both absent: skipped.
(Not called `spectrum`: observatory/spectrum.py has that module name.) The numbers:
analysis.spectrum_data.spectrum_data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter

from rnn_gradients import contract
from rnn_gradients.analysis import Run
from rnn_gradients.analysis.spectrum_data import spectrum_data
from rnn_gradients.figures.style import (
    PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, finite, fmt_num, integer_steps, new_figure,
    save_figure,
)

NAME = "recurrent_spectrum"
TAGS: frozenset[str] = frozenset()  # the spectrum, loss-cliff and summary files only
BOUND_STYLES = ("-", "--", ":", "-.")  # a cell's lines by its blocks' 1/γ, smallest first
BLOCK_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")  # by the block's place in W_hh
UPHILL_COLOR, DIVERGED_COLOR = "#ff7f0e", "#d62728"
RERUN = ("python -m rnn_gradients.train -m experiment=cures, or -m experiment=exploding (runs made since the "
         "spectrum logger)")


def _bound_lines(ax: Any, bounds: Sequence[float]) -> None:
    for bound in sorted(set(bounds)):
        ax.axhline(bound, color="k", lw=0.8, ls=(0, (4, 2)), alpha=0.7, zorder=1)
        ax.annotate(f"1/γ = {bound:g}", (1.0, bound), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=6)


def _log_if_wide(ax: Any, values: Sequence[np.ndarray]) -> None:
    v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in values]) if values else np.zeros(0)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() / v.min() > 20:
        ax.set_yscale("log")


def _plain_log_ticks(ax: Any) -> None:
    """Tick labels 1, 2, 4 rather than 10^0, 2×10^0 on a log axis spanning less than two decades."""
    low, high = ax.get_ylim()
    if low > 0 and high / low < 100:
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)


def _cures_panel(ax: Any, task: str, panel: dict[str, Any]) -> None:
    bounds = []
    for arm, cell in panel["cells"].items():
        color = arm_color(arm)
        for k, (bound, curve) in enumerate(cell["curves"].items()):
            style = BOUND_STYLES[k % len(BOUND_STYLES)]
            ax.plot(curve["steps"], finite(curve["median"]), ls=style, color=color, lw=1.0,
                    label=f"{arm}: {fmt_num(cell['max_sigma_init'])} → {fmt_num(cell['max_sigma_end'])}"
                    if k == 0 else None)
            if len(cell["seeds"]) > 1:
                ax.fill_between(curve["steps"], finite(curve["lo"]), finite(curve["hi"]), color=color, alpha=0.12, lw=0)
            bounds.append(bound)
    _bound_lines(ax, bounds)
    ax.set_yscale("log")  # 1/γ = 1 and 4 and the cells' σ_max near 1 all readable; ratios are what matter
    _plain_log_ticks(ax)
    ax.plot([], [], "k-", lw=1.0, label="solid: the tanh (ReLU) block, 1/γ = 1")
    if any(len(c["curves"]) > 1 for c in panel["cells"].values()):
        ax.plot([], [], "k--", lw=1.0, label="dashed: max over the sigmoid gates, 1/γ = 4")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=5,
              title="cell: σ_max (max over blocks) init → end", title_fontsize=5.5)
    integer_steps(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel(r"$\sigma_{\max}$ of the recurrent matrix")
    n = max(len(c["seeds"]) for c in panel["cells"].values())
    ax.set_title(f"Cures, {task} T={panel['seq_len']}\n({'median over ' + str(n) + ' seeds' if n > 1 else '1 seed'})")


def _exploding_panel(ax: Any, entry: dict[str, Any], pair: dict[str, Any]) -> None:
    for k, (block, sigma) in enumerate(entry["sigma_max"].items()):
        ax.plot(entry["steps"], finite(sigma), color=BLOCK_COLORS[k % len(BLOCK_COLORS)], lw=1.0,
                label=f"{block} (1/γ = {entry['bounds'][block]:g})")
    _bound_lines(ax, list(entry["bounds"].values()))
    if entry["first_uphill_step"] is not None:
        ax.axvline(entry["first_uphill_step"], color=UPHILL_COLOR, ls=":", lw=1.2,
                   label=f"first uphill step ({entry['first_uphill_step']})")
    if entry["diverged_at_step"] is not None:
        ax.axvline(entry["diverged_at_step"], color=DIVERGED_COLOR, ls="--", lw=1.2,
                   label=f"diverged ({entry['diverged_at_step']})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=5)
    integer_steps(ax)
    ax.set_xlabel("training step")
    above = entry["first_above_bound_any"]
    ax.set_title(f"clipping {entry['clipping']}: {pair['optimizer']} lr {fmt_num(pair['lr'])}, seed {entry['seed']}\n"
                 f"first σ_max > 1/γ: {'never' if above is None else 'step ' + str(above)}")


def _caption(data: dict[str, Any], task: str | None) -> str:
    parts = []
    if task is not None:
        panel = data["cures"][task]
        cells = "; ".join(f"{arm} {fmt_num(c['max_sigma_init'])} → {fmt_num(c['max_sigma_end'])}, every block below "
                          f"1/γ at init in {c['n_vanishing_guaranteed_init']}/{c['n_init']} seeds"
                          for arm, c in panel["cells"].items())
        parts.append(f"Left, cures experiment ({task}, T={panel['seq_len']}): σ_max per cell, median over seeds (band: "
                     "min–max); gated cells one line per 1/γ, the max over the blocks with that bound (solid: tanh "
                     f"block against 1; dashed: sigmoid gates against 4). Max over blocks, init → end: {cells}.")
    pair = data["exploding"]
    if pair:
        runs = "; ".join(
            f"clipping {mode}: σ_max (max over blocks) {fmt_num(e['at_init']['max'])} at step 0, "
            f"{fmt_num(e['at_first_uphill']['max'])} at the first uphill step ({e['first_uphill_step']}), "
            f"{fmt_num(e['at_divergence']['max'])} at the divergence ({e['diverged_at_step']}); first σ_max > 1/γ: "
            f"{'never' if e['first_above_bound_any'] is None else 'step ' + str(e['first_above_bound_any'])}"
            for mode, e in pair["runs"].items())
        parts.append(f"Right, exploding experiment ({pair['cell']}, {pair['task']} T={pair['seq_len']}): σ_max per "
                     f"block of the unclipped {pair['optimizer']} run at lr {fmt_num(pair['lr'])} and its norm-clipped "
                     f"twin (seed {pair['seed']}); dotted: the first uphill step ({contract.LOSS_CLIFF_FILE}), "
                     f"dashed red: the divergence ({contract.SUMMARY_FILE}). {runs}.")
    return "σ_max of the recurrent matrix against Pascanu et al.'s 1/γ (1: tanh/ReLU, 4: sigmoid). " + " ".join(parts)


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = spectrum_data(runs)
    task = next(iter(data["cures"]), None)  # the first task in registry order (adding)
    pair = data["exploding"]
    if task is None and not pair:
        raise FigureSkipped(f"needs the {contract.SPECTRUM_FILE} of finished cures or exploding runs ({RERUN})")
    n_panels = (task is not None) + (len(pair["runs"]) if pair else 0)
    fig, axes = new_figure(min(PAGE_WIDTH + 1.5, 0.4 + 2.9 * n_panels), 4.0, 1, n_panels)
    panels = list(axes[0])
    if task is not None:
        _cures_panel(panels.pop(0), task, data["cures"][task])
    if pair:
        first = panels[0]
        for ax, entry in zip(panels, pair["runs"].values()):
            if ax is not first:
                ax.sharey(first)
            _exploding_panel(ax, entry, pair)
        first.set_ylabel(r"$\sigma_{\max}$ per block of $W_{hh}$")
        _log_if_wide(first, [e["sigma_max"][b] for e in pair["runs"].values() for b in e["sigma_max"]])
    files = save_figure(fig, out_dir, NAME)
    data["cures_task_drawn"] = task
    return FigureResult(NAME, files, data, _caption(data, task))
