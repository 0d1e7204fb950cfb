"""Figure 2, grad_flow_through_time: ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) against t, from the runs' grad-flow curves.

(a) arms experiment: RNN and LSTM at initialization (training step 0) and after training (the last
    measurement), the preferred task (adding) at the largest seq_len present, median over seeds at t.
(b) forget_bias experiment: ‖∂L/∂c_t‖ at initialization for each forget-gate bias (median over seeds).
Each curve is labelled with its contract.log10_ratio = log10(‖∂L/∂x_0‖ / ‖∂L/∂x_{T-1}‖) (below 0: the
gradient vanishes going back in time; above 0: it grows). The numbers: analysis.figure_data.grad_flow_data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis import Run, grad_flow_data
from rnn_gradients.figures.style import (
    COLUMN_WIDTH, PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, integer_steps, new_figure, save_figure,
)

NAME = "grad_flow_through_time"
TAGS: frozenset[str] = frozenset()  # the grad-flow files only
QUANTITY_LABEL = {"h": r"$\|\partial L/\partial h_t\|$", "c": r"$\|\partial L/\partial c_t\|$"}
CELL_COLOR = "#9467bd"


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


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = grad_flow_data(runs)
    if data["arms"] is None and data["forget_bias"] is None:
        raise FigureSkipped(f"needs {contract.GRAD_FLOW_FILE} of arms-experiment RNN/LSTM runs or of forget_bias-experiment runs "
                            "(python -m rnn_gradients.train -m experiment=arms / experiment=forget_bias)")
    panels = [p for p in ("arms", "forget_bias") if data[p] is not None]
    fig, axes = new_figure(PAGE_WIDTH if len(panels) == 2 else COLUMN_WIDTH + 0.6, 3.3, 1, len(panels))
    captions = []
    for ax, panel in zip(axes[0], panels):
        info = data[panel]
        seq_len = info["seq_len"]
        if panel == "arms":
            seeds: list[Any] = []
            step = 0
            for (arm, q), c in info["curves"].items():
                color = CELL_COLOR if q == "c" else arm_color(arm)
                name = f"{arm} {QUANTITY_LABEL[q]}"
                if c["init"] is not None:
                    ax.plot(np.arange(len(c["init"])), _positive(c["init"]), "--", color=color, lw=1.0,
                            label=f"{name} init [{_ratio_text(c['init_ratio'])}]")
                _mark_underflow(ax, c["final"], color)
                ax.plot(np.arange(len(c["final"])), _positive(c["final"]), "-", color=color,
                        label=f"{name} trained [{_ratio_text(c['final_ratio'])}]")
                seeds = c["seeds"] if len(c["seeds"]) > len(seeds) else seeds
                step = max(step, c["final_step"])
            ax.set_title(f"(a) {info['task']}, T={seq_len}: init vs after {step} steps\n({_seed_text(seeds)})")
            captions.append(f"(a) arms experiment, {info['task']} task, T={seq_len}, {_seed_text(seeds)}; dashed = "
                            f"initialization (step 0), solid = after training (step {step}).")
        else:
            cmap = matplotlib.colormaps["plasma"]
            fbs = list(info["curves"])
            seeds = []
            for i, fb in enumerate(fbs):
                c = info["curves"][fb]
                color = cmap(0.05 + 0.75 * i / max(1, len(fbs) - 1))  # plasma's bright yellow end left out
                _mark_underflow(ax, c["init"], color)
                ax.plot(np.arange(len(c["init"])), _positive(c["init"]), color=color,
                        label=f"forget bias {fb:g} [{_ratio_text(c['init_ratio'])}]" if isinstance(fb, (int, float))
                        else f"forget bias {fb} [{_ratio_text(c['init_ratio'])}]")
                seeds = c["seeds"] if len(c["seeds"]) > len(seeds) else seeds
            ax.set_title(f"({'b' if len(panels) == 2 else 'a'}) LSTM {QUANTITY_LABEL['c']} at init vs forget bias\n"
                         f"{info['task']}, T={seq_len} ({_seed_text(seeds)})")
            captions.append(f"forget_bias experiment: LSTM cell-state gradient at initialization, {info['task']} "
                            f"task, T={seq_len}, {_seed_text(seeds)}.")
        ax.set_yscale("log")
        integer_steps(ax)
        ax.set_xlabel("time step t (input position)")
        ax.set_ylabel("gradient norm (log scale)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=6, title="[log10(first/last)]",
                  title_fontsize=6)
    files = save_figure(fig, out_dir, NAME)
    return FigureResult(NAME, files, data, " ".join(captions))
