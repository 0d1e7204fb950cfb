"""The orthogonal RNN: a tanh RNN whose W_hh is kept orthogonal during training (Lezcano-Casado &
Martínez-Rubio 2019, expRNN; torch.nn.utils.parametrizations.orthogonal does the parametrization).

Every singular value of an orthogonal W_hh is 1, so the product of Jacobians back through time keeps the
gradient's norm but for the nonlinearity's derivative (tanh' ≤ 1): W_hh can make it neither vanish nor
explode, at any step of training, where the IRNN's identity only holds at the start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnn_gradients.cells.base import COMMON_KEYS
from rnn_gradients.cells.rnn import NONLINEARITIES, RNN
from rnn_gradients.rules import one_of

if TYPE_CHECKING:
    from torch import nn

ORTHOGONAL_MAPS = ("matrix_exp", "cayley")  # torch's maps from skew-symmetric matrices onto the rotations


class OrthogonalRNN(RNN):
    name = "orthogonal_rnn"
    label = "RNN (orthogonal)"
    order = 50
    keys = {"hidden_size": COMMON_KEYS["hidden_size"], "num_layers": COMMON_KEYS["num_layers"],
            "nonlinearity": one_of(NONLINEARITIES), "orthogonal_map": one_of(ORTHOGONAL_MAPS)}

    def build(self, input_size: int) -> nn.Module:
        from rnn_gradients.cells import fused_layers

        return fused_layers.OrthogonalRNN(input_size, self.hidden_size, self.num_layers,
                                          orthogonal_map=self.options.get("orthogonal_map", "matrix_exp"),
                                          **self.fused_options())
