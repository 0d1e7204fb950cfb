"""∂L/∂state_t for every t, exactly, from autograd over the cell's own computation.

The fused kernels hide the states between time steps. The probe steps the cell's own layer one time step
at a time (Cell.stepper: for torch's fused layers, torch's own cell module over the same parameters), so
each step's output and state are nodes of the autograd graph, and one `autograd.grad` gives the gradient
at every one of them: no hand-written twin of the cell, so any cell that runs is measured exactly.

Where a step returns its output h_t apart from its state (a layer called with a sequence of length 1),
both are copies of one tensor, and ∂L/∂h_t is the sum of their gradients. The cell's `state_gradients`
turns the gradients at the state nodes into the curves it reports (the LSTM adds its two paths of ∂L/∂c_t).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rnn_gradients.cells.base import previous
from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.tasks import Task


@dataclass
class TimeGradients:
    """The loss on the probe batch, and the norm over batch and units of each reported gradient at every t
    (`norms[name]`, shape (T,)): the cell's states (h, and c for the LSTM) first, then its own extras."""

    loss: float
    norms: dict[str, Tensor]
    states: tuple[str, ...]


def stepped(step: Callable, x: Tensor, state_names: tuple[str, ...]) -> tuple[list[Tensor], dict[str, list[Tensor]]]:
    """Run one layer's `step` over x (batch, T, in): the outputs [(batch, hidden)] and, per state name, the
    state after each step [(batch, hidden)], all nodes of one graph."""
    outputs: list[Tensor] = []
    nodes: dict[str, list[Tensor]] = {name: [] for name in state_names}
    state = None
    for t in range(x.shape[1]):
        output, state = step(x[:, t], state)
        if len(state) != len(state_names):
            raise ValueError(f"the cell's step returned {len(state)} state tensors, its Cell.states names {len(state_names)}: {state_names}")
        outputs.append(output)
        for name, part in zip(state_names, state):
            nodes[name].append(part)
    return outputs, nodes


@dataclass
class StateGradients:
    """What autograd gives at the probe's nodes, for the probed layer: per state (batch, T, hidden), the
    states and the gradients at them (for states[0] = h the total over its copies)."""

    loss: Tensor
    layer: torch.nn.Module
    inputs: Tensor  # the probed layer's inputs (batch, T, in)
    states: dict[str, Tensor]
    grads: dict[str, Tensor]


def state_gradients(net: RecurrentNetwork, task: Task, x: Tensor, y: Tensor, layer: int = -1) -> StateGradients:
    """One stepped pass of layer `layer` (the others run whole) and one autograd.grad. Uses autograd.grad,
    so the parameters' .grad buffers of the training run are left untouched."""
    cell = net.cell
    views = cell.layers(net.rnn)
    index = layer % len(views)
    with torch.no_grad():  # the layers below feed the probed one; no gradient is asked of them
        below = x
        for view in views[:index]:
            below, _ = view(below)
    with torch.enable_grad():
        outputs, nodes = stepped(cell.stepper(views[index]), below, cell.states)
        sequence = stacked = torch.stack(outputs, dim=1)
        for view in views[index + 1 :]:
            sequence, _ = view(sequence)
        loss = task.loss(net.readout(sequence if task.per_step_output else sequence[:, -1]), y)
        first = cell.states[0]
        copies = [out for out, h in zip(outputs, nodes[first]) if out is not h]  # outputs apart from the state
        wanted = [node for name in cell.states for node in nodes[name]] + copies
        found = torch.autograd.grad(loss, wanted, allow_unused=True)
    with torch.no_grad():
        T = len(outputs)
        grads = [g if g is not None else torch.zeros_like(w) for g, w in zip(found, wanted)]
        by_state = {name: torch.stack(grads[T * i : T * (i + 1)], dim=1) for i, name in enumerate(cell.states)}
        if copies:  # (batch, T, hidden)
            by_state[first] = by_state[first] + torch.stack(grads[T * len(cell.states) :], dim=1)
        values = {name: stacked.detach() if name == first and not copies else torch.stack(nodes[name], dim=1)
                  for name in cell.states}
    return StateGradients(loss.detach(), views[index], below, values, by_state)


def time_gradient_norms(net: RecurrentNetwork, task: Task, x: Tensor, y: Tensor, layer: int = -1) -> TimeGradients:
    """Per-time-step gradient norms of the task loss at the current weights, for one layer: the curves the
    cell reports (Cell.state_gradients), each a Frobenius norm over batch and units at every t."""
    cell, probe = net.cell, state_gradients(net, task, x, y, layer)
    with torch.no_grad():
        reported = cell.state_gradients(probe.layer, probe.inputs, probe.states, probe.grads)
        norms = {name: torch.linalg.vector_norm(g, dim=(0, 2)) for name, g in reported.items()}
    return TimeGradients(loss=probe.loss.item(), norms=norms, states=cell.states)


@torch.no_grad()
def gate_values(net: RecurrentNetwork, x: Tensor) -> list[dict[str, Tensor]]:
    """Every layer's gate activations on x, from one fused pass per layer (gate statistics without a probe)."""
    cell, result, layer_input = net.cell, [], x
    for view in cell.layers(net.rnn):
        outputs, _ = view(layer_input)
        result.append(cell.gate_values(view, layer_input, previous(outputs)))
        layer_input = outputs
    return result
