"""The seed's thought experiment as an arm: an LSTM whose cell state carries nothing from one step to the
next (model.cell_carry=false, arm=lstm_no_carry), on torch's fused kernel, matched by the unrolled twin."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import TINY, compose_config, read_summary, run_cli
from conftest import network
from unrolled_twin import unrolled_forward


def no_carry_net(num_layers: int, hidden: int = 6, seed: int = 0):
    torch.manual_seed(seed)
    return network("lstm", 3, hidden, 2, num_layers=num_layers, cell_carry=False).double()


@pytest.mark.parametrize("num_layers", [1, 2])
def test_the_fused_kernel_keeps_nothing_of_the_previous_cell_state(num_layers):
    """Step by step in the fused kernel: any c_{t-1} (zero or huge) gives the same h_t and c_t, and
    c_t = i_t * tanh(g_t) computed by hand from the parameters."""
    net = no_carry_net(num_layers)
    rnn, H = net.rnn, 6
    x = torch.randn(4, 7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    h = torch.zeros(num_layers, 4, H, dtype=torch.float64)
    c = torch.zeros_like(h)
    for t in range(7):
        _, (h_zero, c_zero) = rnn(x[:, t : t + 1], (h, torch.zeros_like(c)))
        _, (h_any, c_any) = rnn(x[:, t : t + 1], (h, 1e3 * torch.randn_like(c)))
        assert torch.equal(h_zero, h_any) and torch.equal(c_zero, c_any)
        pre = x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h[0] @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        i, f, g, _ = pre.split(H, dim=1)
        assert torch.equal(torch.sigmoid(f), torch.zeros_like(f))  # the forget gate is exactly closed
        torch.testing.assert_close(c_zero[0], torch.sigmoid(i) * torch.tanh(g), rtol=1e-12, atol=1e-12)
        h, c = h_zero, c_zero


@pytest.mark.parametrize("last_only", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_unrolled_twin_matches_outputs_and_gradients(num_layers, last_only):
    net = no_carry_net(num_layers)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 9, 3, generator=g, dtype=torch.float64)
    target = torch.randn((4, 2) if last_only else (4, 9, 2), generator=g, dtype=torch.float64)
    fused = net(x, last_only=last_only)
    ((fused - target) ** 2).sum().backward()
    fused_grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    unrolled, trace = unrolled_forward(net, x, last_only=last_only)
    ((unrolled - target) ** 2).sum().backward()
    torch.testing.assert_close(unrolled, fused, rtol=1e-9, atol=1e-9)
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, fused_grads[name], rtol=1e-9, atol=1e-9, msg=name)
    H = 6
    for layer in range(num_layers):  # the closed gate gets no gradient, so no optimizer step can open it
        assert torch.equal(getattr(net.rnn, f"bias_hh_l{layer}").grad[H : 2 * H], torch.zeros(H, dtype=torch.float64))
        assert all(torch.equal(f, torch.zeros_like(f)) for f in trace.gates[layer]["forget"])


def test_the_default_lstm_is_unchanged():
    """cell_carry=true (the default) builds exactly the LSTM it always did."""
    torch.manual_seed(0)
    default = network("lstm", 3, 6, 2, forget_bias=1.0)
    torch.manual_seed(0)
    explicit = network("lstm", 3, 6, 2, forget_bias=1.0, cell_carry=True)
    assert isinstance(default.rnn, nn.LSTM)
    for (name, a), (_, b) in zip(default.state_dict().items(), explicit.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_arm_preset_trains_on_the_fused_kernel_and_stays_closed(tmp_path):
    cfg = compose_config(["arm=lstm_no_carry"])
    assert cfg.model._target_.endswith(".LSTM") and cfg.model.cell_carry is False and cfg.clipping.mode == "none"
    result = run_cli([*TINY, "arm=lstm_no_carry", "trainer.max_steps=6", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "has no effect" not in result.stdout + result.stderr  # the preset sets no forget bias to ignore
    summary = read_summary(tmp_path / "run")
    assert summary["arm"] == "LSTM (no cell carry)" and summary["status"] == "completed"
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    H = cfg.model.hidden_size if "model.hidden_size=16" not in TINY else 16
    forget = state["network.rnn.bias_hh_l0"][H : 2 * H]
    assert torch.equal(forget, torch.full_like(forget, -1.0e4))  # six Adam steps later, still exactly closed
