"""Figure scalar_toy: |dh_t/dw| = t|w|^(t-1)|x| of the scalar RNN h_t = w^t x for w = 0.9, 1.0, 1.1,
closed form (lines) and torch autograd (markers). Needs no run; the numbers: analysis.toy_gradients."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_gradients.analysis import DEFAULT_WS, Run, scalar_toy_data
from rnn_gradients.figures.style import COLUMN_WIDTH, FigureResult, new_figure, save_figure

NAME = "scalar_toy"
TAGS: frozenset[str] = frozenset()
MARKER_EVERY = 10
W_COLORS = {0.9: "#1f77b4", 1.0: "#7f7f7f", 1.1: "#d62728"}


def draw(runs: Sequence[Run], out_dir: Path, ws: Sequence[float] = DEFAULT_WS, steps: int = 100) -> FigureResult:
    """`runs` is not used: the toy is computed, not measured."""
    data = scalar_toy_data(ws, steps)
    t = data["t"]
    fig, axes = new_figure(COLUMN_WIDTH, 2.7)
    ax = axes[0, 0]
    marks = (t == 1) | (t % MARKER_EVERY == 0)
    for w in ws:
        kind = "vanishes" if abs(w) < 1 else "explodes" if abs(w) > 1 else "grows linearly"
        line = ax.plot(t, data["closed_form"][w], color=W_COLORS.get(w), label=f"w = {w:g} ({kind})")[0]
        ax.plot(t[marks], data["autograd"][w][marks], "o", mfc="none", color=line.get_color(), ms=3.5)
    ax.plot([], [], "o", mfc="none", color="k", ms=3.5, label="torch autograd")
    ax.set_yscale("log")
    ax.set_xlim(0, steps + 2)
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$|\partial h_t / \partial w|$  (x = 1)")
    ax.set_title(r"Scalar RNN $h_t = w^t x$: $|\partial h_t/\partial w| = t\,|w|^{t-1}|x|$")
    ax.legend(loc="upper left")
    files = save_figure(fig, out_dir, NAME)
    worst = data["max_relative_difference"]
    caption = (f"Lines: closed form t|w|^(t-1)|x|; markers: torch autograd through {steps} multiplications by w "
               f"(max relative difference {worst:.1e}).")
    return FigureResult(NAME, files, {"max_relative_difference": worst}, caption)
