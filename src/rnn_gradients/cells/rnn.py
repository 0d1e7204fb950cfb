"""The vanilla (Elman) RNN on torch's fused kernel: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

The scalar toy h_t = w^t x of the essay ("The Thing about LSTM and Exploding Gradients", docs/references.md:
The thesis) made real: every path back in time multiplies by W_hh and tanh'
once per step, so the gradient vanishes (or explodes) geometrically.
"""

from __future__ import annotations

from typing import Any

from rnn_gradients.cells.base import COMMON_KEYS, Cell
from rnn_gradients.rules import one_of

NONLINEARITIES = ("tanh", "relu")


class RNN(Cell):
    name = "rnn"
    label = "RNN"
    fused = "RNN"
    order = 10
    keys = {**COMMON_KEYS, "nonlinearity": one_of(NONLINEARITIES)}

    def fused_options(self) -> dict[str, Any]:
        return {"nonlinearity": self.options.get("nonlinearity", "tanh")}
