"""Figure gradient_paths: the two paths of the LSTM's ∂L/∂c_t against t, per forget-gate bias.

∂L/∂c_t = carry + output: the carry path through the next cell state, f_{t+1} ⊙ ∂L/∂c_{t+1} (0 at t = T-1),
and the output path through h_t, o_t ⊙ (1 − tanh²(c_t)) ⊙ ∂L/∂h_t. Where the carry path dominates, the
gradient travels back along the cell state, multiplied only by forget gates: with gates near 1 it is
preserved (the vanishing is cured; nor can such gates damp a growing gradient), with gates near 0.5 it
still shrinks geometrically. Where the output path dominates, c_t gets its gradient through h_t, which
reaches it through the recurrent weights: the LSTM behaves like the RNN. The caption says which path
dominates where, and what ‖∂L/∂c_t‖ itself does (the median of the per-seed contract.log10_ratio,
analysis.flow_ratios, as in summary.md). One panel per forget bias
(forget_bias experiment), at initialization (dashed) and after training (solid), medians over seeds.
The numbers: analysis.figure_data.gradient_paths_data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import Run, gradient_paths_data
from rnn_gradients.figures.style import (
    COLUMN_WIDTH, PAGE_WIDTH, FigureResult, FigureSkipped, integer_steps, new_figure, save_figure,
)

NAME = "gradient_paths"
TAGS: frozenset[str] = frozenset()  # the grad-flow files only
PATH_COLORS = {"carry": "#9467bd", "output": "#d62728"}  # the cell state's colour; the RNN's, for the h_t path
PATH_LABELS = {"carry": r"carry $f_{t+1}\odot\partial L/\partial c_{t+1}$",
               "output": r"output $o_t\odot(1-\tanh^2 c_t)\odot\partial L/\partial h_t$"}


def _positive(curve: np.ndarray) -> np.ndarray:
    c = np.array(curve, dtype=float)
    c[~(np.isfinite(c) & (c > 0))] = np.nan  # the carry path's 0 at t = T-1 leaves a gap on the log axis
    return c


def _fb_text(fb: Any) -> str:
    return f"{fb:g}" if isinstance(fb, (int, float)) else str(fb)


def _seed_text(seeds: Sequence[Any]) -> str:
    return f"median over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}" if seeds else "no seed"


def _ranges(ts: np.ndarray) -> str:
    """'3–7, 12' for the sorted time steps [3, 4, 5, 6, 7, 12]."""
    runs, start = [], None
    for i, t in enumerate(ts):
        if start is None:
            start = t
        if i + 1 == len(ts) or ts[i + 1] != t + 1:
            runs.append(f"{start}" if start == t else f"{start}–{t}")
            start = None
    return ", ".join(runs[:3]) + (", …" if len(runs) > 3 else "")


def _dominance(carry_wins: np.ndarray | None) -> str:
    """Where each path dominates, over t = 0..T-2 (at T-1 the carry path is 0 by definition)."""
    if carry_wins is None:
        return "not measured"
    wins = np.asarray(carry_wins[:-1], dtype=bool)
    if wins.all():
        return f"carry > output at every t < {len(wins)}"
    if not wins.any():
        return f"output > carry at every t < {len(wins)}"
    return f"output > carry at t = {_ranges(np.flatnonzero(~wins))}, carry > output at the other t < {len(wins)}"


def _fate(ratio: float | None) -> str:
    """What ‖∂L/∂c_t‖ itself does over t, in words, from the median of the seeds' contract.log10_ratio
    (analysis.flow_ratios: the statistic of summary.md's gradient-flow table)."""
    if ratio is None or not np.isfinite(ratio):
        return "‖∂L/∂c_t‖ vanishes to 0" if ratio == float("-inf") else "‖∂L/∂c_t‖ not measured"
    word = "vanishes" if ratio < -1 else "grows back in time" if ratio > 1 else "is preserved"
    return f"‖∂L/∂c_t‖ {word} (log10 first/last {ratio:+.1f}, median over seeds)"


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = gradient_paths_data(runs)
    if not data["biases"]:
        if data["n_without_paths"]:
            raise FigureSkipped(f"the {data['n_without_paths']} forget_bias-experiment {data['cell']} runs' "
                                f"{contract.GRAD_FLOW_FILE} predate the cell-state gradient paths (no "
                                f"{contract.GRAD_FLOW_CARRY_KEY} / {contract.GRAD_FLOW_OUTPUT_KEY}): rerun them (python -m rnn_gradients.train -m "
                                "experiment=forget_bias)")
        raise FigureSkipped(f"needs {contract.GRAD_FLOW_FILE} of forget_bias-experiment runs "
                            "(python -m rnn_gradients.train -m experiment=forget_bias)")
    biases = list(data["biases"])
    ncols = len(biases) if len(biases) <= 3 else 2  # four biases (the quick and full profiles): 2 x 2
    nrows = -(-len(biases) // ncols)
    width = PAGE_WIDTH if len(biases) > 1 else COLUMN_WIDTH + 0.6
    fig, axes = new_figure(width, 0.6 + 2.6 * nrows, nrows, ncols, sharey=True)
    for ax in axes.flat[len(biases):]:
        ax.set_visible(False)
    parts = []
    for i, (ax, fb) in enumerate(zip(axes.flat, biases)):
        entry = data["biases"][fb]
        for when, style in (("init", "--"), ("final", "-")):
            if entry[when] is None:
                continue
            for path in ("carry", "output"):
                curve = entry[when][path]
                ax.plot(np.arange(len(curve)), _positive(curve), style, color=PATH_COLORS[path],
                        lw=1.0 if when == "init" else 1.4,
                        label=f"{PATH_LABELS[path]}, {'init' if when == 'init' else 'trained'}")
        ax.set_title(f"forget bias {_fb_text(fb)} ({_seed_text(entry['seeds'])})", fontsize=8)
        ax.set_yscale("log")
        integer_steps(ax)
        ax.set_xlabel("time step t (input position)")
        if i % ncols == 0:
            ax.set_ylabel(r"$\|$path of $\partial L/\partial c_t\|$ (log)")
        parts.append(f"forget bias {_fb_text(fb)}: at initialization {_dominance(entry['carry_dominates_init'])} and "
                     f"{_fate(entry['c_ratio_init'])}; after {entry['final_step']} steps "
                     f"{_dominance(entry['carry_dominates_final'])} and {_fate(entry['c_ratio_final'])}")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=6)
    files = save_figure(fig, out_dir, NAME)
    caption = (f"The two paths of the {data['cell']} cell-state gradient, forget_bias experiment, {data['task']} task, "
               f"T={data['seq_len']}; dashed = initialization (step 0), solid = after training. Where the carry "
               "path (through c_{t+1}) dominates, the gradient travels back along the cell state, scaled only by "
               "the forget gates: with gates near 1 it is preserved (vanishing cured); where the output path "
               "(through h_t, so through W_hh) dominates, the cell behaves like one without a cell state. "
               + "; ".join(parts) + ".")
    return FigureResult(NAME, files, data, caption)
