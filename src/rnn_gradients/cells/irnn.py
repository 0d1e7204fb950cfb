"""The IRNN (Le, Jaitly & Hinton 2015): a ReLU RNN whose W_hh starts as the identity, with zero biases.

At initialization h_t = relu(W_ih x_t + h_{t-1}): the state is carried unchanged wherever the units are
active, so ∂h_t/∂h_{t-1} is the identity on them, neither vanishing nor exploding. Training moves W_hh
away from the identity, and nothing keeps it there: the cure lasts as long as the init does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rnn_gradients.cells.base import COMMON_KEYS, Cell

if TYPE_CHECKING:
    from torch import nn


class IRNN(Cell):
    name = "irnn"
    label = "IRNN"
    fused = "RNN"
    order = 40
    keys = {key: COMMON_KEYS[key] for key in ("hidden_size", "num_layers")}  # the init is the cell's own

    def fused_options(self) -> dict[str, Any]:
        return {"nonlinearity": "relu"}

    def initialize(self, core: nn.Module, readout: nn.Module) -> None:
        """W_hh = I and b_ih = b_hh = 0 in every layer; W_ih and the readout keep torch's init."""
        for name, weight in core.named_parameters():
            if name.startswith("weight_hh"):
                weight.data.copy_(eye_like(weight.data))
            elif name.startswith("bias"):
                weight.data.zero_()


def eye_like(matrix: Any) -> Any:
    """The identity of a square matrix's size, dtype and device (tensor methods only: no torch import)."""
    eye = matrix.new_zeros(matrix.shape)
    eye.diagonal().fill_(1.0)
    return eye
