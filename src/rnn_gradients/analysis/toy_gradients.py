"""The scalar toy of the essay "The Thing about LSTM and Exploding Gradients" (docs/references.md: The thesis):
h_t = w h_{t-1}, h_0 = x, linear activation, so h_t = w^t x and
dh_t/dw = t w^(t-1) x: vanishing for |w| < 1, exploding for |w| > 1. Closed form and torch autograd."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_WS = (0.9, 1.0, 1.1)


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
    """{'t': (steps,), 'closed_form': {w: (steps,)}, 'autograd': {w: (steps,)}, 'max_relative_difference'}."""
    t = np.arange(1, steps + 1)
    closed = {w: closed_form(t, w, x) for w in ws}
    auto = {w: autograd_gradients(w, steps, x) for w in ws}
    worst = max((float((np.abs(auto[w] - closed[w]) / np.abs(closed[w])).max()) for w in ws), default=0.0)
    return {"t": t, "closed_form": closed, "autograd": auto, "max_relative_difference": worst}
