"""Figure cures: the cures found after the LSTM, side by side (cures experiment). One row per task, at one
sequence length (T=100 where run, else the longest): left, the final val_normalized_loss of every cell, each
seed a dot, the median a bar with its number written beside it (1 = memoryless baseline); right, the log10
gradient ratio log10(‖∂L/∂h_0‖ / ‖∂L/∂h_{T-1}‖) per cell at initialization (hollow) and after training
(filled), each seed a dot, the medians written (the statistic of summary.md's tables: the median of the
per-seed ratios, analysis.flow_ratios). Cells in the registry's order and colours.
The numbers: analysis.cures_data.cures_data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import Run
from rnn_gradients.analysis.cures_data import CURES_EXPERIMENT, cures_data
from rnn_gradients.figures.style import (
    PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, finite, fmt_num, memoryless_baseline, new_figure, save_figure,
    suptitle, wants_log_scale,
)

NAME = "cures"
TAGS: frozenset[str] = frozenset({contract.VAL_NORMALIZED_LOSS})  # its first step below 0.9 × the baseline
RERUN = f"python -m rnn_gradients.train -m experiment={CURES_EXPERIMENT}"
ROW_HEIGHT = 2.7  # inches per task
OFFSET = 0.18  # the init and trained dots of one cell, either side of its tick
JITTER = 0.06  # seeds of one cell spread a little so that equal values stay visible


def _ratio_text(value: Any) -> str:
    if value is None:
        return "n/a"
    return "−∞" if value == -math.inf else f"{value:+.2f}" if math.isfinite(value) else "n/a"


def _spread(n: int) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * (JITTER if n > 1 else 0.0)


def _median_bar(ax: Any, x: float, value: Any, color: str, text: str, width: float = 0.32, left: bool = False) -> None:
    """A short horizontal bar at the median (under the dots), its number written beside it (left of it for
    the init half of a ratio pair, so that the two numbers of one cell do not overlap)."""
    if value is None or not math.isfinite(value):
        ax.annotate(text, (x, 0.02), xycoords=("data", "axes fraction"), ha="center", fontsize=5.5, color=color)
        return
    ax.plot([x - width / 2, x + width / 2], [value, value], color=color, lw=1.6, solid_capstyle="butt", zorder=2)
    edge = x - width / 2 if left else x + width / 2
    ax.annotate(text, (edge, value), xytext=(-1.5 if left else 1.5, 0), textcoords="offset points", fontsize=5.5,
                va="center", ha="right" if left else "left", color="k", zorder=4)


def _loss_panel(ax: Any, task: str, panel: dict[str, Any]) -> None:
    cells = panel["cells"]
    values = []
    for i, (arm, cell) in enumerate(cells.items()):
        color = arm_color(arm)
        losses = finite([np.nan if v is None else v for v in cell["val_normalized_loss"]])
        ax.scatter(i + _spread(len(losses)), losses, s=12, color=color, edgecolor="k", linewidth=0.3, zorder=3)
        values += [v for v in losses if np.isfinite(v)]
        median = cell["median_val_normalized_loss"]
        _median_bar(ax, i, median, color, fmt_num(median))
    memoryless_baseline(ax, label=False)
    if wants_log_scale(values + [1.0]):
        ax.set_yscale("log")
    ax.set_xticks(range(len(cells)), list(cells), rotation=35, ha="right")
    ax.set_xlim(-0.6, len(cells) - 0.2)
    ax.set_ylabel("final val loss / baseline")
    ax.set_title(f"{task}, T={panel['seq_len']}: final val loss (dashed: baseline)")


def _ratio_panel(ax: Any, task: str, panel: dict[str, Any]) -> None:
    cells = panel["cells"]
    for i, (arm, cell) in enumerate(cells.items()):
        color = arm_color(arm)
        for when, dx, face in (("init", -OFFSET, "white"), ("final", OFFSET, color)):
            ratios = finite([np.nan if v is None else v for v in cell[f"log10_ratio_h_{when}"]])
            x = i + dx + _spread(len(ratios))
            ax.scatter(x, ratios, s=12, facecolor=face, edgecolor=color, linewidth=0.9, zorder=3)
            median = cell[f"median_log10_ratio_h_{when}"]
            _median_bar(ax, i + dx, median, color, _ratio_text(median), width=0.16, left=when == "init")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(range(len(cells)), list(cells), rotation=35, ha="right")
    ax.set_xlim(-0.9, len(cells) - 0.3)
    ax.set_ylabel(r"$\log_{10}\,\|\partial L/\partial h_0\| / \|\partial L/\partial h_{T-1}\|$")
    ax.set_title(f"{task}, T={panel['seq_len']}: gradient ratio (○ init, ● trained)")


def _caption(data: dict[str, Any]) -> str:
    parts = []
    for task, panel in data["tasks"].items():
        cells = "; ".join(
            f"{arm}: loss {fmt_num(c['median_val_normalized_loss'])}, log10 ratio h {_ratio_text(c['median_log10_ratio_h_init'])}"
            f" → {_ratio_text(c['median_log10_ratio_h_final'])}" for arm, c in panel["cells"].items())
        parts.append(f"{task} T={panel['seq_len']} ({cells})")
    seeds = max((len(c["seeds"]) for p in data["tasks"].values() for c in p["cells"].values()), default=0)
    return (f"Cures experiment, up to {seeds} seed(s) per cell (dots; bars and numbers = medians): final "
            f"val_normalized_loss ({contract.SUMMARY_FILE}; 1 = memoryless baseline) and log10(‖∂L/∂h_0‖ / "
            f"‖∂L/∂h_{{T-1}}‖) of {contract.GRAD_FLOW_FILE} at init and after training (median of the per-seed "
            "ratios, as in summary.md). " + "; ".join(parts) + ".")


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = cures_data(runs)
    if not data["tasks"]:
        raise FigureSkipped(f"needs finished runs of the cures experiment ({RERUN})")
    tasks = data["tasks"]
    fig, axes = new_figure(PAGE_WIDTH, 0.5 + ROW_HEIGHT * len(tasks), len(tasks), 2)
    for row, (task, panel) in zip(axes, tasks.items()):
        _loss_panel(row[0], task, panel)
        _ratio_panel(row[1], task, panel)
    suptitle(fig, "Cures side by side: final loss and gradient ratio per cell (medians written)")
    files = save_figure(fig, out_dir, NAME)
    return FigureResult(NAME, files, data, _caption(data))
