"""Figure 1: the scalar toy of the seed post. h_t = w h_{t-1}, h_0 = x, linear activation, so
h_t = w^t x and dh_t/dw = t w^(t-1) x: vanishing for |w| < 1, exploding for |w| > 1."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients.figures.plots import COLUMN_WIDTH, FigureResult, new_figure, save_figure

DEFAULT_WS = (0.9, 1.0, 1.1)
MARKER_EVERY = 10


def closed_form(t: np.ndarray, w: float, x: float = 1.0) -> np.ndarray:
    """|dh_t/dw| = t |w|^(t-1) |x|."""
    t = np.asarray(t, dtype=float)
    return t * np.abs(w) ** (t - 1) * abs(x)


def autograd_gradients(w: float, steps: int, x: float = 1.0) -> np.ndarray:
    """|dh_t/dw| for t = 1..steps by torch autograd, h_t computed by repeated multiplication with w."""
    import torch

    weight = torch.tensor(float(w), dtype=torch.float64, requires_grad=True)
    h = torch.tensor(float(x), dtype=torch.float64)
    states = []
    for _ in range(steps):
        h = weight * h
        states.append(h)
    grads = [torch.autograd.grad(h_t, weight, retain_graph=True)[0] for h_t in states]
    return torch.stack(grads).abs().numpy()


def scalar_toy_data(ws: Sequence[float] = DEFAULT_WS, steps: int = 100, x: float = 1.0) -> dict[str, Any]:
    """{'t': (steps,), 'closed_form': {w: (steps,)}, 'autograd': {w: (steps,)}}."""
    t = np.arange(1, steps + 1)
    return {
        "t": t,
        "closed_form": {w: closed_form(t, w, x) for w in ws},
        "autograd": {w: autograd_gradients(w, steps, x) for w in ws},
    }


def plot_scalar_toy(out_dir: Path, ws: Sequence[float] = DEFAULT_WS, steps: int = 100) -> FigureResult:
    data = scalar_toy_data(ws, steps)
    t = data["t"]
    fig, axes = new_figure(COLUMN_WIDTH, 2.7)
    ax = axes[0, 0]
    colors = {0.9: "#1f77b4", 1.0: "#7f7f7f", 1.1: "#d62728"}
    marks = (t == 1) | (t % MARKER_EVERY == 0)
    worst = 0.0
    for w in ws:
        kind = "vanishes" if abs(w) < 1 else "explodes" if abs(w) > 1 else "grows linearly"
        color = colors.get(w)
        line = ax.plot(t, data["closed_form"][w], color=color, label=f"w = {w:g} ({kind})")[0]
        ax.plot(t[marks], data["autograd"][w][marks], "o", mfc="none", color=line.get_color(), ms=3.5)
        rel = np.abs(data["autograd"][w] - data["closed_form"][w]) / np.abs(data["closed_form"][w])
        worst = max(worst, float(rel.max()))
    ax.plot([], [], "o", mfc="none", color="k", ms=3.5, label="torch autograd")
    ax.set_yscale("log")
    ax.set_xlim(0, steps + 2)
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$|\partial h_t / \partial w|$  (x = 1)")
    ax.set_title(r"Scalar RNN $h_t = w^t x$: $|\partial h_t/\partial w| = t\,|w|^{t-1}|x|$")
    ax.legend(loc="upper left")
    files = save_figure(fig, out_dir, "scalar_toy")
    caption = (f"Lines: closed form t|w|^(t-1)|x|; markers: torch autograd through {steps} multiplications by w "
               f"(max relative difference {worst:.1e}).")
    return FigureResult("scalar_toy", files, {"max_relative_difference": worst}, caption)
