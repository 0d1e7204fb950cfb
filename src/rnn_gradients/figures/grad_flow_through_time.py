"""Figure grad_flow_through_time: ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) against t, from the runs' grad-flow curves.

One panel per task of the compared runs (analysis.selection.comparison_runs: the arms experiment, else a
    plain multirun), at that task's largest seq_len: every cell present (its unclipped arm; a clipped twin
    is the same at initialization), h in the arm's colour and, where the cell has one, c in a lighter tint,
    at initialization (training step 0, dashed) and after training (the last measurement, solid), median
    over seeds at t.
Then, with the forget_bias experiment: ‖∂L/∂c_t‖ at initialization for each forget-gate bias (median over
    seeds).
Each curve is labelled with contract.log10_ratio = log10(‖∂L/∂x_0‖ / ‖∂L/∂x_{T-1}‖) (below 0: the
gradient vanishes going back in time; above 0: it grows), the median of the per-seed ratios
(analysis.flow_ratios: the number of summary.md's gradient-flow table, not the ratio of the drawn median
curve); a cell's entry holds both, [init → trained].
The numbers: analysis.figure_data.grad_flow_data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import to_rgb

from rnn_gradients import contract
from rnn_gradients.analysis import Run, grad_flow_data
from rnn_gradients.figures.style import (
    COLUMN_WIDTH, MULTIRUN_HINT, OTHER_COLOR, PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, integer_steps,
    new_figure, save_figure,
)

NAME = "grad_flow_through_time"
TAGS: frozenset[str] = frozenset()  # the grad-flow files only
QUANTITY_LABEL = {"h": r"$\|\partial L/\partial h_t\|$", "c": r"$\|\partial L/\partial c_t\|$"}
STATE_TINT = 0.45  # how far a cell state's curve is lightened towards white from its arm's colour
MAX_COLUMNS = 2  # panels per row: two tasks, or two tasks and the forget-bias panel on two rows
PANEL_HEIGHT = 3.6  # inches per row of panels, the legend below each included
RATIO_AGGREGATION = "median of the seeds' ratios"  # analysis.flow_ratios, as in summary.md


def _ratio_text(value: float) -> str:
    if math.isfinite(value):
        return f"{value:+.1f}"
    return "underflow" if value == float("-inf") else "n/a"


def _positive(curve: np.ndarray) -> np.ndarray:
    c = np.array(curve, dtype=float)
    c[~(np.isfinite(c) & (c > 0))] = np.nan  # zeros (underflow) leave a gap on the log axis
    return c


def _mark_underflow(ax, curve: np.ndarray, color: Any) -> None:
    """Where the first time steps' norms are exactly 0 (below float32's range), say so at the gap."""
    positive = np.flatnonzero(np.isfinite(curve) & (curve > 0))
    if positive.size and positive[0] > 0:
        k = int(positive[0])
        ax.annotate(f"0 for t < {k}\n(underflow)", (k, curve[k]), xytext=(-3, 2), textcoords="offset points", ha="right",
                    fontsize=6, color=color, va="bottom")


def _seed_text(seeds: Sequence[Any]) -> str:
    return f"median over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}" if seeds else "no seed"


def state_color(arm: str, state: str) -> tuple[float, float, float]:
    """The arm's colour for h; a lighter tint of it for any other state (c), so that each cell keeps its
    colour in every figure and its two curves still tell apart."""
    rgb = np.array(to_rgb(arm_color(arm)))
    return tuple(rgb) if state == "h" else tuple(rgb + STATE_TINT * (1 - rgb))


def _draw_task_panel(ax: Any, info: dict[str, Any], letter: str, source: str) -> str:
    """One task's curves, every cell present: dashed at initialization, solid after training, one legend entry
    per (arm, state) with both log10 ratios (a panel of several cells stays readable); the caption."""
    seeds: list[Any] = []
    step = 0
    for (arm, q), c in info["curves"].items():
        color = state_color(arm, q)
        init_text = _ratio_text(c["init_ratio"]) if c["init"] is not None else "n/a"
        if c["init"] is not None:
            ax.plot(np.arange(len(c["init"])), _positive(c["init"]), "--", color=color, lw=1.0)
        _mark_underflow(ax, c["final"], color)
        ax.plot(np.arange(len(c["final"])), _positive(c["final"]), "-", color=color,
                label=f"{arm} {QUANTITY_LABEL.get(q, q)} [{init_text} → {_ratio_text(c['final_ratio'])}]")
        seeds = c["seeds"] if len(c["seeds"]) > len(seeds) else seeds
        step = max(step, c["final_step"])
    ax.plot([], [], "--", color=OTHER_COLOR, lw=1.0, label="dashed: initialization (step 0)")
    ax.plot([], [], "-", color=OTHER_COLOR, label=f"solid: after training (step {step})")
    ax.set_title(f"({letter}) {info['task']}, T={info['seq_len']}: init vs after {step} steps\n({_seed_text(seeds)})")
    return (f"({letter}) {source}, {info['task']} task, T={info['seq_len']}, {_seed_text(seeds)}; dashed = "
            f"initialization (step 0), solid = after training (step {step}); in brackets log10(first/last), "
            f"{RATIO_AGGREGATION}.")


def _draw_forget_bias_panel(ax: Any, info: dict[str, Any], letter: str) -> str:
    """The cell-state gradient at initialization per forget bias (forget_bias experiment); the caption."""
    cmap = matplotlib.colormaps["plasma"]
    fbs = list(info["curves"])
    seeds: list[Any] = []
    for i, fb in enumerate(fbs):
        c = info["curves"][fb]
        color = cmap(0.05 + 0.75 * i / max(1, len(fbs) - 1))  # plasma's bright yellow end left out
        _mark_underflow(ax, c["init"], color)
        fb_text = f"{fb:g}" if isinstance(fb, (int, float)) else str(fb)
        ax.plot(np.arange(len(c["init"])), _positive(c["init"]), color=color,
                label=f"forget bias {fb_text} [{_ratio_text(c['init_ratio'])}]")
        seeds = c["seeds"] if len(c["seeds"]) > len(seeds) else seeds
    ax.set_title(f"({letter}) {info['cell']} {QUANTITY_LABEL['c']} at init vs forget bias\n"
                 f"{info['task']}, T={info['seq_len']} ({_seed_text(seeds)})")
    return (f"({letter}) forget_bias experiment: {info['cell']} cell-state gradient at initialization, "
            f"{info['task']} task, T={info['seq_len']}, {_seed_text(seeds)}; in brackets log10(first/last), "
            f"{RATIO_AGGREGATION}.")


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = grad_flow_data(runs)
    panels = [("task", info) for info in data["tasks"].values()]
    if data["forget_bias"] is not None:
        panels.append(("forget_bias", data["forget_bias"]))
    if not panels:
        raise FigureSkipped(f"needs {contract.GRAD_FLOW_FILE} of finished runs: of a multirun ({MULTIRUN_HINT}) or of "
                            "the forget_bias experiment (python -m rnn_gradients.train -m experiment=forget_bias)")
    ncols = min(len(panels), MAX_COLUMNS)
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(PAGE_WIDTH if ncols > 1 else COLUMN_WIDTH + 0.6, PANEL_HEIGHT * nrows, nrows, ncols)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    captions = []
    for k, (ax, (kind, info)) in enumerate(zip(axes.flat, panels)):
        letter = chr(ord("a") + k)
        captions.append(_draw_task_panel(ax, info, letter, data["source"]) if kind == "task"
                        else _draw_forget_bias_panel(ax, info, letter))
        ax.set_yscale("log")
        integer_steps(ax)
        ax.set_xlabel("time step t (input position)")
        ax.set_ylabel("gradient norm (log scale)")
        title = (f"[log10(first/last), {RATIO_AGGREGATION}: init → trained]" if kind == "task"
                 else f"[log10(first/last), {RATIO_AGGREGATION}]")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1 if kind == "task" else 2, fontsize=6,
                  title=title, title_fontsize=6)
    files = save_figure(fig, out_dir, NAME)
    return FigureResult(NAME, files, data, " ".join(captions))
