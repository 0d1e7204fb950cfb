"""The probe (rnn_gradients.observatory.probe): ∂L/∂state_t at every t for every registered cell, exactly.

Held to two independent computations: for every registered cell, autograd on the fused layer run in two
pieces with a perturbation injected into the state at t; for the RNN and the LSTM, the hand-written twin
of tests/unrolled_twin.py (the old probe), itself held to torch's fused kernels here, to a relative 1e-9.
"""

from __future__ import annotations

import pytest
import torch

from conftest import network
from rnn_gradients import cells
from rnn_gradients.cells.base import previous
from rnn_gradients.observatory.probe import state_gradients, time_gradient_norms
from rnn_gradients.tasks.adding import Adding
from rnn_gradients.tasks.copy import Copy
from unrolled_twin import time_gradient_norms as twin_time_gradient_norms
from unrolled_twin import unrolled_forward

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh")]  # the cells the twin knows
CELL_IDS = ["rnn-tanh", "rnn-relu", "lstm"]
REGISTERED = [cell.name for cell in cells.registered()]


def make_net(cell, nonlinearity, num_layers, input_size=3, hidden=6, output=2, seed=0, **kw):
    torch.manual_seed(seed)
    extra = {"nonlinearity": nonlinearity} if "nonlinearity" in cells.by_name(cell).keys else {}
    return network(cell, input_size, hidden, output, num_layers=num_layers, **extra, **kw).double()


def param_grads(net) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in net.named_parameters()}


# ----------------------------------------------------------------------------- unrolled == fused


@pytest.mark.parametrize("last_only", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell,nonlinearity", CELLS, ids=CELL_IDS)
def test_unrolled_matches_fused_outputs_and_gradients(cell, nonlinearity, num_layers, last_only):
    net = make_net(cell, nonlinearity, num_layers, forget_bias=1.0 if cell == "lstm" else None)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 9, 3, generator=g, dtype=torch.float64)
    target = torch.randn((4, 2) if last_only else (4, 9, 2), generator=g, dtype=torch.float64)

    fused = net(x, last_only=last_only)
    ((fused - target) ** 2).sum().backward()
    fused_grads = param_grads(net)
    net.zero_grad(set_to_none=True)

    unrolled, trace = unrolled_forward(net, x, last_only=last_only)
    ((unrolled - target) ** 2).sum().backward()
    unrolled_grads = param_grads(net)

    assert unrolled.shape == fused.shape
    torch.testing.assert_close(unrolled, fused, rtol=1e-9, atol=1e-9)
    assert fused_grads.keys() == unrolled_grads.keys()
    for name in fused_grads:
        assert fused_grads[name].abs().max() > 0, name  # every parameter really gets a gradient
        torch.testing.assert_close(unrolled_grads[name], fused_grads[name], rtol=1e-9, atol=1e-9, msg=name)

    # the trace holds every hidden state; the top layer's states are what the fused kernel returns
    assert len(trace.hidden) == num_layers and all(len(hs) == 9 for hs in trace.hidden)
    states, final = net.rnn(x)
    h_n = final[0] if cell == "lstm" else final
    torch.testing.assert_close(torch.stack(trace.hidden[-1], 1), states, rtol=1e-9, atol=1e-9)
    for layer in range(num_layers):
        torch.testing.assert_close(trace.hidden[layer][-1], h_n[layer], rtol=1e-9, atol=1e-9)
    if cell == "lstm":
        c_n = final[1]
        for layer in range(num_layers):
            torch.testing.assert_close(trace.cell[layer][-1], c_n[layer], rtol=1e-9, atol=1e-9)
    else:
        assert trace.cell == []


def test_unrolled_matches_fused_float32():
    torch.manual_seed(0)
    net = network("lstm", 10, 16, 10, num_layers=2, forget_bias=1.0)
    x, y = Copy(5).sample(8, torch.Generator().manual_seed(0))
    fused = net(x, last_only=False)
    unrolled, _ = unrolled_forward(net, x, last_only=False)
    torch.testing.assert_close(unrolled, fused, rtol=1e-5, atol=1e-5)


def test_lstm_trace_gates_are_the_gate_activations():
    net = make_net("lstm", "tanh", 1, forget_bias=2.0)
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    _, trace = unrolled_forward(net, x, last_only=True)
    rnn, H = net.rnn, 6
    # recompute step 0 by hand from the parameters (h_{-1} = c_{-1} = 0)
    pre = x[:, 0] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + rnn.bias_hh_l0
    i, f, g, o = pre.split(H, dim=1)
    torch.testing.assert_close(trace.gates[0]["input"][0], torch.sigmoid(i))
    torch.testing.assert_close(trace.gates[0]["forget"][0], torch.sigmoid(f))
    torch.testing.assert_close(trace.gates[0]["output"][0], torch.sigmoid(o))
    c0 = torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(trace.cell[0][0], c0)
    torch.testing.assert_close(trace.hidden[0][0], torch.sigmoid(o) * torch.tanh(c0))


# ----------------------------------------------------------------------------- the probe


def perturbed_state_gradients(net, task, x, y, layer: int) -> dict[str, torch.Tensor]:
    """Independent of the probe's stepping: for each t, the probed layer runs whole up to t, a zero
    perturbation δ is added to each state it hands on (and, for states[0] = h, to its output at t), the rest
    of the sequence runs whole from there, and autograd gives ∂L/∂δ: (batch, T, hidden) per state."""
    cell = net.cell
    views = cell.layers(net.rnn)
    index = layer % len(views)
    with torch.no_grad():
        below = x
        for view in views[:index]:
            below, _ = view(below)
    T = below.shape[1]
    grads = {name: [] for name in cell.states}
    for t in range(T):
        head, state = views[index](below[:, : t + 1])
        parts = state if isinstance(state, tuple) else (state,)
        deltas = [torch.zeros_like(part, requires_grad=True) for part in parts]
        moved = [part + delta for part, delta in zip(parts, deltas)]
        pieces = [head[:, :t], head[:, t : t + 1] + deltas[0].transpose(0, 1)]
        if t + 1 < T:
            tail, _ = views[index](below[:, t + 1 :], tuple(moved) if isinstance(state, tuple) else moved[0])
            pieces.append(tail)
        sequence = torch.cat(pieces, dim=1)
        for view in views[index + 1 :]:
            sequence, _ = view(sequence)
        loss = task.loss(net.readout(sequence if task.per_step_output else sequence[:, -1]), y)
        found = torch.autograd.grad(loss, deltas, allow_unused=True)  # at t = T-1 only h is used
        for name, grad, delta in zip(cell.states, found, deltas):
            grads[name].append((grad if grad is not None else torch.zeros_like(delta))[0])
    return {name: torch.stack(values, dim=1) for name, values in grads.items()}


def sample(task, batch=5, seed=4):
    x, y = task.sample(batch, torch.Generator().manual_seed(seed))
    return x.double(), (y.double() if y.is_floating_point() else y)


@pytest.mark.parametrize("num_layers,layer", [(1, -1), (2, -1), (2, 0)], ids=["1layer", "2layers-top", "2layers-bottom"])
@pytest.mark.parametrize("task", [Copy(4), Adding(9)], ids=["copy", "adding"])
@pytest.mark.parametrize("cell", REGISTERED)
def test_every_registered_cell_matches_an_independent_autograd_computation(cell, task, num_layers, layer):
    """∂L/∂h_t (the total, states[0]) against the perturbation computation, for every registered cell; a
    further state's perturbation holds the step's output fixed, which for the LSTM's c_t is exactly its
    carry path f_{t+1} ⊙ ∂L/∂c_{t+1} (the probe's total ∂L/∂c_t is held to the twin below)."""
    net = make_net(cell, "tanh", num_layers, input_size=task.input_size, hidden=7, output=task.output_size)
    x, y = sample(task)
    probe = state_gradients(net, task, x, y, layer=layer)
    reference = perturbed_state_gradients(net, task, x, y, layer)
    assert sorted(probe.grads) == sorted(reference) == sorted(net.cell.states)
    h = net.cell.states[0]
    assert probe.grads[h].shape == (5, task.input_length, 7) and probe.grads[h].abs().max() > 0
    torch.testing.assert_close(probe.grads[h], reference[h], rtol=1e-9, atol=1e-12)
    reported = net.cell.state_gradients(probe.layer, probe.inputs, probe.states, probe.grads)
    torch.testing.assert_close(reported[h], reference[h], rtol=1e-9, atol=1e-12)
    if cell == "lstm":
        assert reference["c"].abs().max() > 0
        torch.testing.assert_close(reported["c_via_carry"], reference["c"], rtol=1e-9, atol=1e-12)


TWIN_CASES = [("rnn", "tanh", {}), ("rnn", "relu", {}), ("lstm", "tanh", {"forget_bias": 1.0}),
              ("lstm", "tanh", {"forget_bias": 0.0}), ("lstm", "tanh", {"forget_bias": 5.0}),
              ("lstm", "tanh", {"cell_carry": False})]


@pytest.mark.parametrize("num_layers,layer", [(1, -1), (2, -1), (2, 0)], ids=["1layer", "2layers-top", "2layers-bottom"])
@pytest.mark.parametrize("task", [Copy(6), Adding(40)], ids=["copy", "adding"])
@pytest.mark.parametrize("cell,nonlinearity,keys", TWIN_CASES, ids=["rnn-tanh", "rnn-relu", "lstm-fb1", "lstm-fb0", "lstm-fb5", "lstm-nocarry"])
def test_probe_curves_equal_the_hand_written_twin(cell, nonlinearity, keys, task, num_layers, layer):
    """The curves of the old probe, to a relative 1e-9 at every t: h, c, and both paths of ∂L/∂c_t."""
    net = make_net(cell, nonlinearity, num_layers, input_size=task.input_size, hidden=8, output=task.output_size, **keys)
    x, y = sample(task)
    new = time_gradient_norms(net, task, x, y, layer=layer)
    old = twin_time_gradient_norms(net, task, x, y, layer=layer)
    assert new.loss == pytest.approx(old.loss, rel=1e-12)
    pairs = {"h": old.hidden}
    if old.cell is not None:
        pairs |= {"c": old.cell, "c_via_carry": old.cell_carry, "c_via_output": old.cell_output}
    assert sorted(new.norms) == sorted(pairs)
    for name, expected in pairs.items():
        assert new.norms[name].shape == (task.input_length,)
        torch.testing.assert_close(new.norms[name], expected, rtol=1e-9, atol=0, msg=name)


@pytest.mark.parametrize("keys", [{"forget_bias": 1.0}, {"cell_carry": False}], ids=["carry", "nocarry"])
def test_lstm_gates_rebuild_the_kernels_states(keys):
    """The LSTM's own gate computation (used for the output path and the gate statistics) reproduces the
    fused kernel: h_t = o_t ⊙ tanh(c_t), and c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t with g_t from the kernel's c."""
    task = Adding(12)
    net = make_net("lstm", "tanh", 1, input_size=2, hidden=5, output=1, **keys)
    x, y = sample(task)
    probe = state_gradients(net, task, x, y)
    h, c = probe.states["h"], probe.states["c"]
    gates = net.cell.gate_values(probe.layer, probe.inputs, previous(h))
    torch.testing.assert_close(gates["output"] * c.tanh(), h, rtol=1e-12, atol=1e-14)
    carried = gates["forget"] * previous(c)
    if keys.get("cell_carry") is False:
        assert torch.equal(carried, torch.zeros_like(carried))
    # i ⊙ g = c - f ⊙ c_{t-1}, and |g| = |tanh(.)| < 1 wherever i > 0
    assert ((c - carried) / gates["input"]).abs().max() < 1


def test_time_gradient_norms_leave_parameter_grads_untouched():
    task = Adding(8)
    net = make_net("lstm", "tanh", 2, input_size=2, output=1, forget_bias=1.0)
    x, y = task.sample(4, torch.Generator().manual_seed(0))
    x, y = x.double(), y.double()
    # some parameters carry a "training" gradient, one has none
    params = list(net.named_parameters())
    for i, (_, p) in enumerate(params):
        p.grad = None if i == 0 else torch.full_like(p, float(i))
    before = {n: (None if p.grad is None else p.grad.clone()) for n, p in params}
    result = time_gradient_norms(net, task, x, y)
    assert torch.all(result.norms["h"] > 0)
    for n, p in params:
        if before[n] is None:
            assert p.grad is None, n
        else:
            assert torch.equal(p.grad, before[n]), n


def test_time_gradient_adding_last_step_is_readout_gradient():
    """For the adding task the loss reads only h_{T-1}: ||dL/dh_{T-1}|| = ||dL/dy_hat * W_out||."""
    task = Adding(6)
    net = make_net("rnn", "tanh", 1, input_size=2, output=1)
    x, y = task.sample(3, torch.Generator().manual_seed(0))
    x, y = x.double(), y.double()
    result = time_gradient_norms(net, task, x, y)
    with torch.no_grad():
        pred = net(x, last_only=True).squeeze(-1)
        dl_dpred = 2 * (pred - y) / y.numel()
        expected = (dl_dpred[:, None] * net.readout.weight).norm()
    assert result.norms["h"][-1].item() == pytest.approx(expected.item(), rel=1e-9)
