"""The unrolled reference agrees with torch's fused kernels; per-time-step gradient norms; init knobs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.reference import time_gradient_norms, unrolled_forward
from rnn_gradients.tasks import AddingTask, CopyTask

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh")]
CELL_IDS = ["rnn-tanh", "rnn-relu", "lstm"]


def make_net(cell, nonlinearity, num_layers, input_size=3, hidden=6, output=2, seed=0, **kw) -> RecurrentNetwork:
    torch.manual_seed(seed)
    net = RecurrentNetwork(cell, input_size, hidden, output, num_layers=num_layers, nonlinearity=nonlinearity, **kw)
    return net.double()


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
    net = RecurrentNetwork("lstm", 10, 16, 10, num_layers=2, forget_bias=1.0)
    x, y = CopyTask(5).sample(8, torch.Generator().manual_seed(0))
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


# ----------------------------------------------------------------------------- ||dL/dh_t||


def stepwise_fused_time_grads(net: RecurrentNetwork, task, x, y, layer: int):
    """Independent measurement: torch's fused kernel, one single-layer module per layer, fed one time
    step at a time with (h, c) passed between calls; every h_t / c_t is retained by autograd.

    The fused kernel returns h_t and c_t as separate outputs, so the gradient arriving at its c_t output
    only covers the path into later steps; the path through h_t = o_t * tanh(c_t) (inside the kernel) is
    added by hand: dL/dc_t = dL/dc_t|recurrent + dL/dh_t * o_t * (1 - tanh(c_t)^2), with the output gate
    o_t written out from PyTorch's documented LSTM equations.
    """
    rnn = net.rnn
    L = rnn.num_layers
    layer = layer % L
    H = rnn.hidden_size
    cells = []
    for l in range(L):
        in_size = rnn.input_size if l == 0 else H
        if net.cell == "lstm":
            m = nn.LSTM(in_size, H, 1, batch_first=True)
        else:
            m = nn.RNN(in_size, H, 1, nonlinearity=rnn.nonlinearity, batch_first=True)
        m = m.to(x.dtype)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(m, f"{name}_l0").copy_(getattr(rnn, f"{name}_l{l}"))
        cells.append(m)

    B, T = x.shape[:2]
    state = [None] * L
    hs, cs, os_ = [], [], []
    tops = []
    for t in range(T):
        inp = x[:, t : t + 1]
        for l, m in enumerate(cells):
            if net.cell == "lstm":
                prev = state[l] if state[l] is not None else (x.new_zeros(1, B, H), x.new_zeros(1, B, H))
                _, (h, c) = m(inp, prev)
                state[l] = (h, c)
            else:
                prev = state[l] if state[l] is not None else x.new_zeros(1, B, H)
                _, h = m(inp, prev)
                c = None
                state[l] = h
            if l == layer:
                h.retain_grad()
                hs.append(h)
                if c is not None:
                    c.retain_grad()
                    cs.append(c)
                    with torch.no_grad():  # output gate: sigmoid(W_io x + b_io + W_ho h_prev + b_ho)
                        rows = slice(3 * H, 4 * H)
                        o = torch.sigmoid(
                            inp[:, 0] @ m.weight_ih_l0[rows].T + m.bias_ih_l0[rows]
                            + prev[0][0] @ m.weight_hh_l0[rows].T + m.bias_hh_l0[rows]
                        )
                        torch.testing.assert_close(o * torch.tanh(c[0]), h[0])  # the gate is right
                    os_.append(o)
            inp = h.transpose(0, 1)  # (B, 1, H): next layer's input at this step
        tops.append(inp[:, 0])
    top = torch.stack(tops, 1)
    predictions = net.readout(top if task.per_step_output else top[:, -1])
    loss = task.loss(predictions, y)
    loss.backward()
    h_norms = torch.stack([h.grad.norm() for h in hs])
    c_norms = None
    if cs:
        totals = []
        for h, c, o in zip(hs, cs, os_):
            recurrent = c.grad[0] if c.grad is not None else torch.zeros_like(c[0])
            totals.append(recurrent + h.grad[0] * o * (1 - torch.tanh(c[0].detach()) ** 2))
        c_norms = torch.stack([g.norm() for g in totals])
    return loss.item(), h_norms, c_norms


@pytest.mark.parametrize(
    "num_layers,layer", [(1, -1), (2, -1), (2, 0)], ids=["1layer", "2layers-top", "2layers-bottom"]
)
@pytest.mark.parametrize("task_name", ["copy", "adding"])
@pytest.mark.parametrize("cell,nonlinearity", CELLS, ids=CELL_IDS)
def test_time_gradient_norms_match_stepwise_fused(cell, nonlinearity, task_name, num_layers, layer):
    task = CopyTask(6) if task_name == "copy" else AddingTask(12)
    net = make_net(
        cell, nonlinearity, num_layers, input_size=task.input_size, hidden=8, output=task.output_size,
        forget_bias=1.0 if cell == "lstm" else None, init="orthogonal",
    )
    x, y = task.sample(5, torch.Generator().manual_seed(4))
    x = x.double()
    y = y.double() if y.is_floating_point() else y

    result = time_gradient_norms(net, task, x, y, layer=layer)
    ref_net = make_net(
        cell, nonlinearity, num_layers, input_size=task.input_size, hidden=8, output=task.output_size,
        forget_bias=1.0 if cell == "lstm" else None, init="orthogonal",
    )
    loss, h_norms, c_norms = stepwise_fused_time_grads(ref_net, task, x, y, layer)

    assert result.loss == pytest.approx(loss, rel=1e-9)
    assert result.hidden.shape == (task.input_length,)
    assert torch.all(h_norms > 0)
    torch.testing.assert_close(result.hidden, h_norms, rtol=1e-5, atol=0)
    if cell == "lstm":
        assert result.cell is not None and result.cell.shape == (task.input_length,)
        torch.testing.assert_close(result.cell, c_norms, rtol=1e-5, atol=0)
    else:
        assert result.cell is None


def test_time_gradient_norms_leave_parameter_grads_untouched():
    task = AddingTask(8)
    net = make_net("lstm", "tanh", 2, input_size=2, output=1, forget_bias=1.0)
    x, y = task.sample(4, torch.Generator().manual_seed(0))
    x, y = x.double(), y.double()
    # some parameters carry a "training" gradient, one has none
    params = list(net.named_parameters())
    for i, (_, p) in enumerate(params):
        p.grad = None if i == 0 else torch.full_like(p, float(i))
    before = {n: (None if p.grad is None else p.grad.clone()) for n, p in params}
    result = time_gradient_norms(net, task, x, y)
    assert torch.all(result.hidden > 0)
    for n, p in params:
        if before[n] is None:
            assert p.grad is None, n
        else:
            assert torch.equal(p.grad, before[n]), n


def test_time_gradient_adding_last_step_is_readout_gradient():
    """For the adding task the loss reads only h_{T-1}: ||dL/dh_{T-1}|| = ||dL/dy_hat * W_out||."""
    task = AddingTask(6)
    net = make_net("rnn", "tanh", 1, input_size=2, output=1)
    x, y = task.sample(3, torch.Generator().manual_seed(0))
    x, y = x.double(), y.double()
    result = time_gradient_norms(net, task, x, y)
    with torch.no_grad():
        pred = net(x, last_only=True).squeeze(-1)
        dl_dpred = 2 * (pred - y) / y.numel()
        expected = (dl_dpred[:, None] * net.readout.weight).norm()
    assert result.hidden[-1].item() == pytest.approx(expected.item(), rel=1e-9)
