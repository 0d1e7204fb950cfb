"""The trained networks: torch's fused nn.RNN / nn.LSTM plus a linear readout.

Initialisation knobs live here because they decide, before any training, whether gradients vanish
or explode (spectral radius of W_hh; the LSTM forget-gate bias).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnn_gradients.choices import CELLS, INITS, NONLINEARITIES


class RecurrentNetwork(nn.Module):
    """A recurrent core with a readout at every step or only the last one."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        init: str = "default",
        spectral_radius: float = 1.0,
        forget_bias: float | None = None,
        cell_carry: bool = True,
    ) -> None:
        super().__init__()
        self.cell, self.cell_carry = cell, cell_carry
        if cell == "rnn":
            self.rnn: nn.RNN | nn.LSTM = nn.RNN(
                input_size, hidden_size, num_layers, nonlinearity=nonlinearity, batch_first=True
            )
        elif cell == "lstm":
            self.rnn = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        else:
            raise ValueError(f"model.cell must be one of {list(CELLS)}, got {cell!r}")
        self.readout = nn.Linear(hidden_size, output_size)
        if init == "glorot":
            init_glorot(self.rnn, self.readout)
        else:
            init_recurrent_weights(self.rnn, init, spectral_radius)
        if cell == "lstm" and forget_bias is not None and cell_carry:
            shift_forget_bias(self.rnn, forget_bias)
        if cell == "lstm" and not cell_carry:
            close_forget_gates(self.rnn)

    def forward(self, x: Tensor, last_only: bool) -> Tensor:
        states, _ = self.rnn(x)
        return self.readout(states[:, -1] if last_only else states)


def recurrent_blocks(rnn: nn.RNN | nn.LSTM, layer: int) -> list[Tensor]:
    """The square per-gate blocks of W_hh of one layer (views; writing to them writes the weight)."""
    w_hh = getattr(rnn, f"weight_hh_l{layer}")
    return list(w_hh.data.chunk(w_hh.shape[0] // rnn.hidden_size, dim=0))


@torch.no_grad()
def init_recurrent_weights(rnn: nn.RNN | nn.LSTM, init: str, spectral_radius: float = 1.0) -> None:
    """'default' keeps torch's uniform init; 'orthogonal' makes each gate block orthogonal (radius 1);
    'spectral' rescales each torch-initialised block to the given spectral radius."""
    if init not in INITS:
        raise ValueError(f"model.init must be one of {list(INITS)}, got {init!r}")
    if init in ("default", "glorot"):  # glorot: init_glorot, which also sets the input and readout weights
        return
    for layer in range(rnn.num_layers):
        for block in recurrent_blocks(rnn, layer):
            if init == "orthogonal":
                nn.init.orthogonal_(block)
            else:
                radius = torch.linalg.eigvals(block.double()).abs().max().item()
                block.mul_(spectral_radius / radius)


@torch.no_grad()
def init_glorot(rnn: nn.RNN | nn.LSTM, readout: nn.Linear) -> None:
    """The initialisation of Arjovsky et al.'s code (amarshah/complex_RNN, models.py): every weight matrix,
    one gate block at a time, uniform in ±sqrt(6 / (fan_in + fan_out)), the readout included; every bias 0.

    For 128 units this is 1.7× torch's ±1/sqrt(H) on W_hh, 2.4× on W_ih (2 inputs) and 2.4× on the readout:
    larger weights at the start, and with them a faster exit from the adding baseline (README, the paper's
    recipe side by side). The forget bias is added afterwards, as for the other inits.
    """
    H = rnn.hidden_size
    for name, weight in rnn.named_parameters():
        if name.startswith("weight"):
            for block in weight.data.split(H, dim=0):
                bound = (6.0 / (block.shape[0] + block.shape[1])) ** 0.5
                block.uniform_(-bound, bound)
        else:
            weight.data.zero_()
    bound = (6.0 / (readout.in_features + readout.out_features)) ** 0.5
    readout.weight.data.uniform_(-bound, bound)
    readout.bias.data.zero_()


@torch.no_grad()
def shift_forget_bias(lstm: nn.LSTM, forget_bias: float) -> None:
    """Add `forget_bias` to the forget-gate slice of b_ih in every layer.

    torch initialises biases uniformly in ±1/sqrt(H) (mean 0), so f_t ≈ sigmoid(0) = 0.5 and the cell
    state forgets half of itself per step. Shifting (not overwriting) keeps torch's init exactly when
    forget_bias=0 and makes the mean forget pre-activation equal forget_bias otherwise.
    """
    H = lstm.hidden_size
    for layer in range(lstm.num_layers):
        getattr(lstm, f"bias_ih_l{layer}")[H : 2 * H] += forget_bias


# A forget-gate pre-activation this far below 0 gives f_t = sigmoid(z) = 0.0 exactly: exp(z) underflows
# below about -745 in float64 (-104 in float32), so 1/(1 + exp(-z)) rounds to 0 in every dtype and kernel.
# Its derivative f(1 - f) is then exactly 0 too: the forget rows get no gradient, and an optimizer step
# (Adam, RMSProp, SGD: an update proportional to a zero gradient) leaves them where they are.
CLOSED_FORGET_BIAS = -1.0e4


@torch.no_grad()
def close_forget_gates(lstm: nn.LSTM) -> None:
    """The seed's thought experiment, "remove the internal cell state": c_t = i_t ⊙ g_t, no f_t ⊙ c_{t-1}.

    Done inside torch's fused kernel (so the arm trains at the LSTM's speed) by setting the forget-gate
    slice of b_hh to CLOSED_FORGET_BIAS in every layer: f_t is then exactly 0, so f_t ⊙ c_{t-1} is exactly
    0 (c_{t-1} = i ⊙ g is bounded), and the unrolled twin, which reads the same parameters, computes the
    same. Every path back in time now runs through h_{t-1} and the gates, as in a plain RNN.
    """
    H = lstm.hidden_size
    for layer in range(lstm.num_layers):
        getattr(lstm, f"bias_hh_l{layer}")[H : 2 * H] = CLOSED_FORGET_BIAS

