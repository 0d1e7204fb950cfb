"""The GRU cell (rnn_gradients/cells/gru.py): its gates reproduce torch's kernel (b_hn inside the reset
gate: the trap a hand-written twin falls into), its carry path z_{t+1} ⊙ ∂L/∂h_{t+1} against a twin's autograd
pass, and a real run that logs its reset and update gates. The probe's ∂L/∂h_t itself is held to an
independent autograd computation for every registered cell in tests/test_probe.py."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY, read_summary, run_cli
from rnn_gradients.cells.base import previous
from rnn_gradients.cells.gru import GRU_CARRY_KEY
from rnn_gradients.networks import network_for
from rnn_gradients.observatory.probe import state_gradients, time_gradient_norms
from rnn_gradients.tasks.copy import Copy
from test_observatory import events


def twin_states(net, x: torch.Tensor, b_hn_inside_reset: bool = True) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The GRU written out from torch's documented equations (one layer), keeping every h_t and z_t; with
    b_hn_inside_reset=False it adds b_ih + b_hh before the gates, the pattern of the RNN and LSTM twins."""
    rnn, H = net.rnn, net.rnn.hidden_size
    w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    h = x.new_zeros(x.shape[0], H)
    hs, zs = [], []
    for t in range(x.shape[1]):
        if b_hn_inside_reset:
            gi, gh = x[:, t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        else:
            gi, gh = x[:, t] @ w_ih.T + b_ih + b_hh, h @ w_hh.T
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        hs.append(h)
        zs.append(z)
    return hs, zs


def gru_and_batch(seq_len: int, batch: int, seed: int):
    """A float64 GRU (hidden 6) on the copy task of length seq_len, and a batch of it."""
    task = Copy(seq_len)
    torch.manual_seed(0)
    net = network_for("gru", task.input_size, task.output_size, hidden_size=6).double()
    x, y = task.sample(batch, torch.Generator().manual_seed(seed))
    return task, net, x.double(), y


def test_the_gates_reproduce_the_kernel_and_the_trap_does_not():
    _, net, x, _ = gru_and_batch(5, 4, seed=1)
    with torch.no_grad():
        fused, _ = net.rnn(x)
        gates = net.cell.gate_values(net.rnn, x, previous(fused))
        hs, zs = twin_states(net, x)
        wrong, _ = twin_states(net, x, b_hn_inside_reset=False)
    torch.testing.assert_close(torch.stack(hs, 1), fused, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gates["update"], torch.stack(zs, 1), rtol=1e-12, atol=1e-12)
    assert sorted(gates) == ["reset", "update"] and ((gates["reset"] > 0) & (gates["reset"] < 1)).all()
    assert (torch.stack(wrong, 1) - fused).abs().max() > 1e-3  # the trap: plausible, and wrong


def test_the_carry_path_is_z_times_the_next_gradient():
    task, net, x, y = gru_and_batch(6, 5, seed=2)
    with torch.enable_grad():
        hs, zs = twin_states(net, x)
        loss = task.loss(net.readout(torch.stack(hs, 1)), y)
        grads = torch.autograd.grad(loss, hs)
    expected = [zs[t + 1] * grads[t + 1] for t in range(len(hs) - 1)] + [torch.zeros_like(grads[-1])]
    norms = time_gradient_norms(net, task, x, y).norms
    assert sorted(norms) == ["h", GRU_CARRY_KEY]
    torch.testing.assert_close(norms["h"], torch.stack([g.norm() for g in grads]), rtol=1e-9, atol=0)
    torch.testing.assert_close(norms[GRU_CARRY_KEY], torch.stack([e.norm() for e in expected]), rtol=1e-9, atol=0)
    assert norms[GRU_CARRY_KEY][-1] == 0 and state_gradients(net, task, x, y).grads["h"].shape == (5, 26, 6)


@pytest.mark.parametrize("choice", ["model=gru", "arm=gru"])
def test_a_run_logs_the_gru_and_its_gates(tmp_path, choice):
    run_dir = tmp_path / "run"
    result = run_cli([*TINY, choice, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = read_summary(run_dir)
    assert (summary["arm"], summary["model"], summary["status"]) == ("GRU", "gru", "completed")
    tags = events(run_dir / "tensorboard").Tags()
    assert {"gates/reset_mean_l0", "gates/update_mean_l0", "grad_flow/log10_ratio_h"} <= set(tags["scalars"])
    assert "grad_flow/log10_ratio_c" not in tags["scalars"] and "gates/reset_l0" in tags["histograms"]
