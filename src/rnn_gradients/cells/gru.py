"""The GRU (Cho et al. 2014) on torch's fused kernel, in torch's convention:

    r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)            reset gate
    z = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)            update gate
    n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))   candidate (b_hn inside the reset gate)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

The question of the essay ("The Thing about LSTM and Exploding Gradients", docs/references.md: The thesis)
for it: does the interpolation z ⊙ h_{t-1} carry the gradient back as the LSTM's
f ⊙ c_{t-1} does? Its one state is h, so the probe measures ∂L/∂h_t directly, and this module adds the
part of it that arrives through that term, carry_t = z_{t+1} ⊙ ∂L/∂h_{t+1} (GRU_CARRY_KEY in grad_flow.npz).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnn_gradients.cells.base import Cell, previous

if TYPE_CHECKING:
    from torch import Tensor, nn

GRU_CARRY_KEY = "h_via_carry"  # grad_flow.npz: ‖z_{t+1} ⊙ ∂L/∂h_{t+1}‖ over t (0 at t = T-1)


class GRU(Cell):
    name = "gru"
    label = "GRU"
    gates = ("reset", "update")
    blocks = {"reset": 0.25, "update": 0.25, "new": 1.0}  # torch's rows: r, z, n (tanh)
    fused = "GRU"
    order = 30

    def gate_values(self, layer: nn.Module, x: Tensor, h_prev: Tensor) -> dict[str, Tensor]:
        from_input = x @ layer.weight_ih_l0.T + layer.bias_ih_l0
        from_state = h_prev @ layer.weight_hh_l0.T + layer.bias_hh_l0
        (r_in, z_in, _), (r_h, z_h, _) = from_input.chunk(3, dim=-1), from_state.chunk(3, dim=-1)
        return {"reset": (r_in + r_h).sigmoid(), "update": (z_in + z_h).sigmoid()}

    def state_gradients(self, layer: nn.Module, x: Tensor, states: dict[str, Tensor],
                        grads: dict[str, Tensor]) -> dict[str, Tensor]:
        update = self.gate_values(layer, x, previous(states["h"]))["update"]
        carry = (update * grads["h"]).roll(-1, dims=1)  # carry_t = z_{t+1} ⊙ ∂L/∂h_{t+1}
        carry[:, -1] = 0
        return {"h": grads["h"], GRU_CARRY_KEY: carry}
