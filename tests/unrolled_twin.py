"""The tests' independent computation of ∂L/∂h_t and ∂L/∂c_t: a hand-written, step-by-step twin of torch's
fused RNN and LSTM that reads the very same parameters (until issue 18 it was the observatory's probe;
the probe now steps the cells' own kernels, rnn_gradients.observatory.probe, and is held to this).

It implements the seed's equations literally:
    RNN:  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    LSTM: i,f,g,o = σ,σ,tanh,σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
          c_t = f ⊙ c_{t-1} + i ⊙ g;   h_t = o ⊙ tanh(c_t)
so the gradient reaching an LSTM's c_t is the sum of two paths (`cell_gradient_paths`):
    ∂L/∂c_t = f_{t+1} ⊙ ∂L/∂c_{t+1}       (carry, through c_{t+1})
            + o_t ⊙ (1 − tanh²(c_t)) ⊙ ∂L/∂h_t  (output, through h_t)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.tasks.base import Task


@dataclass
class Trace:
    """Every intermediate state of an unrolled pass; lists are indexed [layer][t]."""

    hidden: list[list[Tensor]] = field(default_factory=list)
    cell: list[list[Tensor]] = field(default_factory=list)  # LSTM only
    gates: list[dict[str, list[Tensor]]] = field(default_factory=list)  # LSTM only: i, f, o per step
    cell_tanh: list[list[Tensor]] = field(default_factory=list)  # LSTM only: tanh(c_t), the one h_t used


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
        if net.cell.name == "rnn":
            act = torch.tanh if rnn.nonlinearity == "tanh" else torch.relu
            for t in range(x.shape[1]):
                h = act(input_part[:, t] + h @ w_hh.T)
                hs.append(h)
        elif net.cell.name == "lstm":
            c = torch.zeros_like(h)
            cs: list[Tensor] = []
            tanhs: list[Tensor] = []
            gates: dict[str, list[Tensor]] = {"input": [], "forget": [], "output": []}
            for t in range(x.shape[1]):
                i, f, g, o = (input_part[:, t] + h @ w_hh.T).chunk(4, dim=1)
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                c = f * c + i * g
                tanh_c = torch.tanh(c)
                h = o * tanh_c
                hs.append(h)
                cs.append(c)
                tanhs.append(tanh_c)
                for name, value in (("input", i), ("forget", f), ("output", o)):
                    gates[name].append(value)
            trace.cell.append(cs)
            trace.cell_tanh.append(tanhs)
            trace.gates.append(gates)
        else:
            raise ValueError(f"the twin knows the RNN and the LSTM, not {net.cell.name!r}")
        trace.hidden.append(hs)
        layer_input = torch.stack(hs, dim=1)
    return net.readout(layer_input[:, -1] if last_only else layer_input), trace


@dataclass
class TimeGradients:
    """‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖ for an LSTM) for t = 0..L-1, Frobenius over batch and units; for an LSTM
    also the norms of the two paths of ∂L/∂c_t (`cell_gradient_paths`): carry and output."""

    loss: float
    hidden: Tensor
    cell: Tensor | None
    trace: Trace
    cell_carry: Tensor | None = None
    cell_output: Tensor | None = None


def cell_gradient_paths(trace: Trace, layer: int, grad_h: Sequence[Tensor], grad_c: Sequence[Tensor]
                        ) -> tuple[list[Tensor], list[Tensor]]:
    """The two terms of ∂L/∂c_t for t = 0..T-1, each a (batch, hidden) tensor, for one LSTM layer of an
    unrolled pass: carry_t = f_{t+1} ⊙ ∂L/∂c_{t+1} (0 at t = T-1) and output_t = o_t ⊙ (1 − tanh²(c_t)) ⊙
    ∂L/∂h_t, where grad_h[t], grad_c[t] are the total gradients at h_t and c_t; carry + output = grad_c.
    A few elementwise operations (torch._foreach_*, no stacking copies) on tensors the pass already holds:
    no second forward or backward."""
    with torch.no_grad():
        forget, output_gate, tanh_c = trace.gates[layer]["forget"], trace.gates[layer]["output"], trace.cell_tanh[layer]
        carry = list(torch._foreach_mul(list(forget[1:]), list(grad_c[1:]))) if len(grad_c) > 1 else []
        carry.append(torch.zeros_like(grad_c[-1]))  # no carry path out of the last step
        o_dh = torch._foreach_mul(list(output_gate), list(grad_h))
        return carry, torch._foreach_addcmul(o_dh, o_dh, torch._foreach_mul(tanh_c, tanh_c), value=-1.0)


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
    grads = [g.detach() if g is not None else torch.zeros_like(s) for g, s in zip(grads, hs + cs)]
    T = len(hs)
    norms = _norms(grads)
    result = TimeGradients(loss=loss.item(), hidden=norms[:T], cell=norms[T:] if cs else None, trace=trace)
    if cs:
        carry, output = cell_gradient_paths(trace, layer, grads[:T], grads[T:])
        result.cell_carry, result.cell_output = _norms(carry), _norms(output)
    return result


def _norms(tensors: list[Tensor]) -> Tensor:
    """Frobenius norm of each tensor, as one 1-D tensor."""
    with torch.no_grad():
        return torch.stack(torch._foreach_norm(tensors))
