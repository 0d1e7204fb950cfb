"""The initialisation knobs of the fused cells (rnn_gradients.cells.fused_layers, cells/lstm.py): orthogonal and spectral recurrent weights, the
forget-gate bias shift, the nonlinearity, and refusing unknown cells and inits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import network
from rnn_gradients import cells
from rnn_gradients.cells.fused_layers import recurrent_blocks


# ----------------------------------------------------------------------------- initialisation


FUSED = [cell.name for cell in cells.registered() if cell.fused and "init" in cell.keys]  # the cells with model.init
GATE_BLOCKS = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}  # torch's documented stacking of W_hh


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", FUSED)
def test_orthogonal_init(cell, num_layers):
    torch.manual_seed(0)
    net = network(cell, 3, 12, 2, num_layers=num_layers, init="orthogonal")
    gates = GATE_BLOCKS[type(net.rnn)]
    for layer in range(num_layers):
        w = getattr(net.rnn, f"weight_hh_l{layer}").detach().double()
        blocks = w.split(12, dim=0)
        assert len(blocks) == gates
        for block in blocks:
            torch.testing.assert_close(block @ block.T, torch.eye(12, dtype=torch.float64), atol=1e-5, rtol=0)
        if gates > 1:  # the gate blocks are not copies of each other
            assert not torch.allclose(blocks[0], blocks[1])


@pytest.mark.parametrize("radius", [0.5, 1.0, 1.7])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", FUSED)
def test_spectral_init(cell, num_layers, radius):
    torch.manual_seed(0)
    net = network(cell, 3, 10, 2, num_layers=num_layers, init="spectral", spectral_radius=radius)
    for layer in range(num_layers):
        w = getattr(net.rnn, f"weight_hh_l{layer}").detach().double()
        blocks = w.split(10, dim=0)
        assert len(blocks) == GATE_BLOCKS[type(net.rnn)]
        for block in blocks:
            rho = torch.linalg.eigvals(block).abs().max().item()
            assert rho == pytest.approx(radius, rel=1e-5)


def test_spectral_init_only_rescales_torch_init():
    torch.manual_seed(5)
    default = network("lstm", 3, 10, 2, init="default")
    torch.manual_seed(5)
    spectral = network("lstm", 3, 10, 2, init="spectral", spectral_radius=0.9)
    for b_def, b_spec in zip(recurrent_blocks(default.rnn, 0), recurrent_blocks(spectral.rnn, 0)):
        scale = (b_spec / b_def).flatten()
        torch.testing.assert_close(scale, scale[0].expand_as(scale), rtol=1e-4, atol=0)
    # input weights untouched
    assert torch.equal(default.rnn.weight_ih_l0, spectral.rnn.weight_ih_l0)


@pytest.mark.parametrize("cell, hidden, inputs", [("lstm", 128, 2), ("rnn", 64, 10)])
def test_glorot_init_is_arjovskys(cell, hidden, inputs):
    """Every gate block of W_ih and W_hh and the readout uniform in ±sqrt(6/(fan_in+fan_out)), as in
    amarshah/complex_RNN's initialize_matrix; biases 0 but the forget bias, which is added as usual."""
    torch.manual_seed(0)
    net = network(cell, inputs, hidden, 1, init="glorot", forget_bias=1.0 if cell == "lstm" else None)
    gates = 4 if cell == "lstm" else 1
    matrices = [(net.rnn.weight_ih_l0, inputs, gates), (net.rnn.weight_hh_l0, hidden, gates), (net.readout.weight, hidden, 1)]
    for weight, fan_in, blocks in matrices:
        fan_out = weight.shape[0] // blocks
        bound = (6 / (fan_in + fan_out)) ** 0.5
        for block in weight.detach().split(fan_out, dim=0):
            assert block.abs().max() <= bound and block.abs().max() > 0.9 * bound  # fills the interval
            assert block.std().item() == pytest.approx(bound / 3**0.5, rel=0.2)  # uniform: std = bound/sqrt(3)
    bias = (net.rnn.bias_ih_l0 + net.rnn.bias_hh_l0).detach()
    expected = torch.zeros_like(bias)
    if cell == "lstm":
        expected[hidden:2 * hidden] = 1.0
    assert torch.equal(bias, expected) and torch.equal(net.readout.bias.detach(), torch.zeros(1))


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("forget_bias", [1.0, 3.0, -2.0])
def test_forget_bias_shift(num_layers, forget_bias):
    H = 7
    torch.manual_seed(42)
    base = network("lstm", 3, H, 2, num_layers=num_layers, forget_bias=0.0)
    torch.manual_seed(42)
    shifted = network("lstm", 3, H, 2, num_layers=num_layers, forget_bias=forget_bias)
    for layer in range(num_layers):
        total = lambda net: (
            getattr(net.rnn, f"bias_ih_l{layer}") + getattr(net.rnn, f"bias_hh_l{layer}")
        ).detach()
        b0, b1 = total(base), total(shifted)
        torch.testing.assert_close(b1[H : 2 * H], b0[H : 2 * H] + forget_bias, rtol=0, atol=1e-6)
        # the input, cell and output gate biases are untouched
        torch.testing.assert_close(b1[:H], b0[:H], rtol=0, atol=0)
        torch.testing.assert_close(b1[2 * H :], b0[2 * H :], rtol=0, atol=0)
    # and no other parameter changes
    for (n0, p0), (n1, p1) in zip(base.named_parameters(), shifted.named_parameters()):
        if "bias" not in n0 or "readout" in n0:
            assert torch.equal(p0, p1), n0


@pytest.mark.parametrize("forget_bias", [0.0, None])
def test_zero_forget_bias_is_torch_default(forget_bias):
    torch.manual_seed(3)
    net = network("lstm", 4, 9, 2, num_layers=2, forget_bias=forget_bias)
    torch.manual_seed(3)
    plain = nn.LSTM(4, 9, 2, batch_first=True)
    plain_params = dict(plain.named_parameters())
    assert set(plain_params) == {n for n, _ in net.rnn.named_parameters()}
    for name, p in net.rnn.named_parameters():
        assert torch.equal(p, plain_params[name]), name


def test_rnn_ignores_forget_bias():
    torch.manual_seed(3)
    a = network("rnn", 4, 9, 2, forget_bias=5.0)
    torch.manual_seed(3)
    plain = nn.RNN(4, 9, 1, batch_first=True)
    for (n, p), (_, q) in zip(a.rnn.named_parameters(), plain.named_parameters()):
        assert torch.equal(p, q), n


def test_nonlinearity_is_used():
    torch.manual_seed(0)
    relu = network("rnn", 3, 8, 2, nonlinearity="relu")
    x = torch.randn(2, 5, 3)
    states, _ = relu.rnn(x)
    assert relu.rnn.nonlinearity == "relu"
    assert states.min() >= 0 and states.max() > 1e-3


def test_forward_last_only_shapes():
    torch.manual_seed(0)
    net = network("lstm", 3, 8, 2)
    x = torch.randn(4, 6, 3)
    full = net(x, last_only=False)
    last = net(x, last_only=True)
    assert full.shape == (4, 6, 2) and last.shape == (4, 2)
    torch.testing.assert_close(last, full[:, -1])


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"cell": "__nope__"}, "no registered cell"),
        ({"cell": "RNN"}, "no registered cell"),  # names are the cells' own, lower case
        ({"cell": "rnn", "init": "xavier"}, "model.init"),
        ({"cell": "lstm", "init": "Orthogonal"}, "model.init"),
    ],
)
def test_bad_cell_or_init_raises(kwargs, key):
    kwargs = {"input_size": 3, "hidden_size": 4, "output_size": 2, **kwargs}
    with pytest.raises(ValueError, match=key):
        network(**kwargs)
