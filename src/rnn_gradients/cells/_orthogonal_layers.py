"""The orthogonal RNN's torch modules (cells/orthogonal_rnn.py declares the cell; this file loads torch, so the
registry skips it): W_hh on the orthogonal group by torch's parametrization, W = base · map(A), A skew-symmetric
(the dynamic trivialization of Lezcano-Casado & Martínez-Rubio 2019): the optimizer moves A, the layer sees W.

- `OrthogonalRNN`: torch's fused nn.RNN (tanh or ReLU) with that W_hh in every layer.
- `ModReLURNN`: expRNN's own cell, h_t = modrelu(W_ih x_t + W_hh h_{t-1}), modrelu(z) = sign(z)·relu(|z| + b)
  with a learned b per unit and no other bias; no fused kernel computes it, so it steps in Python.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal


@torch.no_grad()
def henaff_(weight: Tensor) -> Tensor:
    """Henaff et al.'s (2016) orthogonal start, expRNN's choice for copy: W = exp(A), A block-diagonal with
    2 × 2 blocks [[0, θ], [−θ, 0]], θ ~ U(−π, π): rotations by θ in n/2 planes, eigenvalues spread on the circle."""
    n = weight.shape[0]
    skew = torch.zeros(n, n, dtype=torch.float64)
    theta = torch.empty(n // 2, dtype=torch.float64).uniform_(-math.pi, math.pi)
    skew[torch.arange(0, n - 1, 2), torch.arange(1, n, 2)] = theta
    return weight.copy_(torch.linalg.matrix_exp(skew - skew.T))  # an odd n keeps one fixed axis


def constrain(module: nn.Module, name: str, init: str, orthogonal_map: str) -> None:
    """Start `module.<name>` orthogonal ("haar": uniform on the group; "henaff"), then keep it there."""
    weight = getattr(module, name)
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:  # torch would make it semi-orthogonal, silently
        raise ValueError(f"{name} has shape {tuple(weight.shape)}: the orthogonal constraint needs a square matrix")
    nn.init.orthogonal_(weight) if init == "haar" else henaff_(weight)
    orthogonal(module, name, orthogonal_map=orthogonal_map)


class OrthogonalRNN(nn.RNN):
    """nn.RNN (batch first) whose every W_hh is orthogonal through training."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, init: str, orthogonal_map: str,
                 **options: Any) -> None:
        super().__init__(input_size, hidden_size, num_layers, batch_first=True, **options)
        for layer in range(num_layers):
            constrain(self, f"weight_hh_l{layer}", init, orthogonal_map)  # W_hh is H x H: square by construction

    def __deepcopy__(self, memo: dict[int, Any]) -> OrthogonalRNN:
        # nn.RNN caches the last forward's weights; a parametrized W_hh is a graph node there, which deepcopy
        # refuses (the probe copies the network): recompute the cache without a graph, then copy as usual.
        with torch.no_grad():
            self._init_flat_weights()
        replica = self.__new__(type(self))
        memo[id(self)] = replica
        replica.__dict__ = copy.deepcopy(self.__dict__, memo)
        return replica


class ModReLURNN(nn.Module):
    """One layer of expRNN's cell, called like torch's layers: forward(x (batch, T, in), state (1, batch, H)
    or None) -> (outputs (batch, T, H), last state (1, batch, H)). Parameters: weight_ih (no bias, Kaiming
    normal as in expRNN's code), weight_hh (orthogonal), modrelu_bias (U(−0.01, 0.01))."""

    def __init__(self, input_size: int, hidden_size: int, init: str, orthogonal_map: str) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(nn.init.kaiming_normal_(torch.empty(hidden_size, input_size), nonlinearity="relu"))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.modrelu_bias = nn.Parameter(torch.empty(hidden_size).uniform_(-0.01, 0.01))
        constrain(self, "weight_hh", init, orthogonal_map)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = x.new_zeros(x.shape[0], self.hidden_size) if state is None else state[0]
        driven, w_hh = x @ self.weight_ih.T, self.weight_hh  # the parametrization runs once per call
        outputs = []
        for t in range(x.shape[1]):
            z = driven[:, t] + h @ w_hh.T
            h = torch.sign(z) * torch.relu(z.abs() + self.modrelu_bias)
            outputs.append(h)
        return torch.stack(outputs, 1), h.unsqueeze(0)


class Stack(nn.ModuleList):
    """Single-layer modules run one after another, called like torch's multi-layer layers."""

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        finals = []
        for index, layer in enumerate(self):
            x, final = layer(x, None if state is None else state[index : index + 1])
            finals.append(final)
        return x, torch.cat(finals)
