"""torch's fused recurrent layers (the subclasses of nn.RNNBase), for the cells that run on them: building,
one-layer views for the probe, and the initialisations of model.init.

The inits decide, before any training, whether gradients vanish or explode (the spectral radius of W_hh);
they act on W_hh one gate block at a time, so every fused cell gets them (1, 3 or 4 blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from rnn_gradients.cells.base import COMMON_KEYS
from rnn_gradients.rules import require


def build(kind: str | None, input_size: int, hidden_size: int, num_layers: int, **options: Any) -> nn.RNNBase:
    layer = getattr(nn, str(kind), None)
    if not (isinstance(layer, type) and issubclass(layer, nn.RNNBase) and layer is not nn.RNNBase):
        raise ValueError(f"Cell.fused must name a subclass of torch.nn.RNNBase (RNN, LSTM, ...), or the cell overrides build(); got {kind!r}")
    return layer(input_size, hidden_size, num_layers, batch_first=True, **options)


_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def is_fused(core: nn.Module) -> bool:
    return isinstance(core, nn.RNNBase)


def torch_class(module: nn.Module) -> type[nn.RNNBase]:
    """nn.RNN, nn.LSTM or nn.GRU, also for a module torch.nn.utils.parametrize has subclassed."""
    return next(c for c in type(module).__mro__ if getattr(nn, c.__name__, None) is c)


def _share(module: nn.Module, name: str, tensor: Tensor) -> None:
    """Make `module.<name>` the given tensor: a Parameter of another module, or the value of a parametrized
    weight (an ordinary tensor, through which gradients flow back to the parametrization)."""
    delattr(module, name)
    setattr(module, name, tensor)


def layer_views(core: nn.RNNBase) -> list[nn.RNNBase]:
    """One single-layer module per layer, sharing the core's parameter tensors (assigning a weight updates
    the fused kernel's weight list; the views are built on the meta device, so nothing is copied)."""
    if core.num_layers == 1:
        return [core]
    extra = {"nonlinearity": core.nonlinearity} if isinstance(core, nn.RNN) else {}
    views = []
    for layer in range(core.num_layers):
        size = core.input_size if layer == 0 else core.hidden_size
        view = torch_class(core)(size, core.hidden_size, 1, bias=core.bias, batch_first=core.batch_first,
                                 device="meta", **extra)
        for name in _PARAMETERS[: 4 if core.bias else 2]:
            _share(view, f"{name}_l0", getattr(core, f"{name}_l{layer}"))
        views.append(view)
    return views


def stepper(layer: nn.RNNBase) -> Callable[[Tensor, tuple[Tensor, ...] | None], tuple[Tensor, tuple[Tensor, ...]]]:
    """One time step of a single-layer fused `layer`, through torch's own cell module (nn.LSTM -> nn.LSTMCell,
    and so on: the per-step function of torch's CPU kernel) over the layer's very parameters. Stepping the
    fused layer itself with sequences of length 1 gives the same numbers at 1.4-2.5× the cost."""
    kind = getattr(nn, f"{torch_class(layer).__name__}Cell")
    extra = {"nonlinearity": layer.nonlinearity} if isinstance(layer, nn.RNN) else {}
    cell = kind(layer.input_size, layer.hidden_size, bias=layer.bias, device="meta", **extra)
    for name in _PARAMETERS[: 4 if layer.bias else 2]:
        _share(cell, name, getattr(layer, f"{name}_l0"))
    lstm = isinstance(layer, nn.LSTM)

    def step(x: Tensor, state: tuple[Tensor, ...] | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        if lstm:
            h, c = cell(x, state)
            return h, (h, c)
        h = cell(x, None if state is None else state[0])
        return h, (h,)

    return step


def recurrent_blocks(rnn: nn.RNNBase, layer: int) -> list[Tensor]:
    """The square per-gate blocks of W_hh of one layer (views; writing to them writes the weight)."""
    w_hh = getattr(rnn, f"weight_hh_l{layer}")
    return list(w_hh.data.chunk(w_hh.shape[0] // rnn.hidden_size, dim=0))


@torch.no_grad()
def initialize(core: nn.RNNBase, readout: nn.Linear, init: str, spectral_radius: float = 1.0) -> None:
    """'default' keeps torch's uniform init; 'orthogonal' makes each gate block orthogonal (radius 1);
    'spectral' rescales each torch-initialised block to the given spectral radius; 'glorot' is init_glorot."""
    require("model.init", init, COMMON_KEYS["init"])  # the cell's own rule: the command line's words
    if init == "glorot":
        init_glorot(core, readout)
    if init in ("default", "glorot"):
        return
    for layer in range(core.num_layers):
        for block in recurrent_blocks(core, layer):
            if init == "orthogonal":
                nn.init.orthogonal_(block)
            else:
                radius = torch.linalg.eigvals(block.double()).abs().max().item()
                block.mul_(spectral_radius / radius)


@torch.no_grad()
def init_glorot(rnn: nn.RNNBase, readout: nn.Linear) -> None:
    """The initialisation of Arjovsky et al.'s code (amarshah/complex_RNN, models.py): every weight matrix,
    one gate block at a time, uniform in ±sqrt(6 / (fan_in + fan_out)), the readout included; every bias 0.

    For 128 units this is 1.7× torch's ±1/sqrt(H) on W_hh, 2.4× on W_ih (2 inputs) and 2.4× on the readout:
    larger weights at the start, and with them a faster exit from the adding baseline (README, the paper's
    recipe side by side). A cell's own bias settings (the LSTM's forget bias) come afterwards.
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
