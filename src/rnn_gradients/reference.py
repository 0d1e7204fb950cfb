"""A step-by-step (unrolled) twin of torch's fused RNN/LSTM that reads the very same parameters.

The fused kernels hide the hidden states' gradients; this twin keeps every h_t (and c_t) as a node of
the autograd graph, so ∂L/∂h_t and ∂L/∂c_t can be measured at every time step. It implements the seed's
equations literally:
    RNN:  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    LSTM: i,f,g,o = σ,σ,tanh,σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
          c_t = f ⊙ c_{t-1} + i ⊙ g;   h_t = o ⊙ tanh(c_t)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.tasks import Task


@dataclass
class Trace:
    """Every intermediate state of an unrolled pass; lists are indexed [layer][t]."""

    hidden: list[list[Tensor]] = field(default_factory=list)
    cell: list[list[Tensor]] = field(default_factory=list)  # LSTM only
    gates: list[dict[str, list[Tensor]]] = field(default_factory=list)  # LSTM only: i, f, o per step


def unrolled_forward(net: RecurrentNetwork, x: Tensor, last_only: bool) -> tuple[Tensor, Trace]:
    """Same outputs as `net(x, last_only)`, computed one time step at a time."""
    rnn, trace = net.rnn, Trace()
    layer_input = x
    for layer in range(rnn.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
        b = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
        input_part = layer_input @ w_ih.T + b  # the input projection has no recurrence: all t at once
        h = x.new_zeros(x.shape[0], rnn.hidden_size)
        hs: list[Tensor] = []
        if net.cell == "rnn":
            act = torch.tanh if rnn.nonlinearity == "tanh" else torch.relu
            for t in range(x.shape[1]):
                h = act(input_part[:, t] + h @ w_hh.T)
                hs.append(h)
        else:
            c = torch.zeros_like(h)
            cs: list[Tensor] = []
            gates: dict[str, list[Tensor]] = {"input": [], "forget": [], "output": []}
            for t in range(x.shape[1]):
                i, f, g, o = (input_part[:, t] + h @ w_hh.T).chunk(4, dim=1)
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                c = f * c + i * g
                h = o * torch.tanh(c)
                hs.append(h)
                cs.append(c)
                for name, value in (("input", i), ("forget", f), ("output", o)):
                    gates[name].append(value)
            trace.cell.append(cs)
            trace.gates.append(gates)
        trace.hidden.append(hs)
        layer_input = torch.stack(hs, dim=1)
    return net.readout(layer_input[:, -1] if last_only else layer_input), trace


@dataclass
class TimeGradients:
    """‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖ for an LSTM) for t = 0..L-1, Frobenius over batch and units."""

    loss: float
    hidden: Tensor
    cell: Tensor | None
    trace: Trace


def time_gradient_norms(net: RecurrentNetwork, task: Task, x: Tensor, y: Tensor, layer: int = -1) -> TimeGradients:
    """Per-time-step gradient norms of the task loss at the current weights, for one layer.

    Uses autograd.grad, so parameter .grad buffers of the training run are left untouched.
    """
    with torch.enable_grad():
        predictions, trace = unrolled_forward(net, x, last_only=not task.per_step_output)
        loss = task.loss(predictions, y)
        hs = trace.hidden[layer]
        cs = trace.cell[layer] if trace.cell else []
        grads = torch.autograd.grad(loss, hs + cs, allow_unused=True)
    norms = torch.stack([g.norm() if g is not None else x.new_zeros(()) for g in grads]).detach()
    T = len(hs)
    return TimeGradients(
        loss=loss.item(), hidden=norms[:T], cell=norms[T:] if cs else None, trace=trace
    )
