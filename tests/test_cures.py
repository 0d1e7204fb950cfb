"""The cures of issue 19 as cells: the IRNN's identity start and the LSTM's chrono initialization, each
checked against its paper's recipe; each runs through the command line. (Their probe is held to an independent autograd
computation with every registered cell in tests/test_probe.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import TINY, compose_config, read_summary, run_cli
from rnn_gradients.networks import network_for


def test_irnn_starts_at_the_identity_with_zero_biases():
    torch.manual_seed(0)
    net = network_for("irnn", 3, 2, hidden_size=6, num_layers=2).double()
    for layer in range(2):
        assert torch.equal(getattr(net.rnn, f"weight_hh_l{layer}"), torch.eye(6, dtype=torch.float64))
        assert not getattr(net.rnn, f"bias_ih_l{layer}").any() and not getattr(net.rnn, f"bias_hh_l{layer}").any()
    # the fused kernel is then h_t = relu(W_ih x_t + h_{t-1}): written out for the first layer
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    h, states = torch.zeros(4, 6, dtype=torch.float64), []
    for t in range(5):
        h = torch.relu(x[:, t] @ net.rnn.weight_ih_l0.T + h)
        states.append(h)
    view = net.cell.layers(net.rnn)[0]
    torch.testing.assert_close(view(x)[0], torch.stack(states, 1), rtol=1e-12, atol=1e-12)


def test_chrono_biases_follow_tallec_and_ollivier():
    T = 200
    torch.manual_seed(0)
    net = network_for("lstm", 2, 1, hidden_size=4000, forget_init="chrono", chrono_t_max=T)
    H = 4000
    b_ih, b_hh = net.rnn.bias_ih_l0.detach().double(), net.rnn.bias_hh_l0.detach().double()
    forget, input_gate = b_ih[H : 2 * H] + b_hh[H : 2 * H], b_ih[:H] + b_hh[:H]
    torch.testing.assert_close(input_gate, -forget, rtol=0, atol=0)
    u = forget.exp()  # U(1, T - 1): its mean and its range
    assert u.min() >= 1 and u.max() <= T - 1 and u.mean().item() == pytest.approx(T / 2, rel=0.03)
    assert not b_hh[: 2 * H].any()


def test_chrono_t_max_follows_the_task_and_the_arm_is_labelled(tmp_path):
    assert compose_config(["arm=lstm_chrono", "data.seq_len=37"]).model.chrono_t_max == 37
    result = run_cli([*TINY, "arm=lstm_chrono", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "has no effect" not in result.stdout + result.stderr  # the preset unsets forget_bias
    summary = read_summary(tmp_path / "run")
    assert (summary["arm"], summary["model"]) == ("LSTM (chrono)", "lstm")


@pytest.mark.parametrize("arm,label,name", [("irnn", "IRNN", "irnn"), ("orthogonal_rnn", "RNN (orthogonal)", "orthogonal_rnn"),
                                              ("orthogonal_rnn_modrelu", "RNN (orthogonal, modReLU)", "orthogonal_rnn_modrelu")])
def test_the_cures_run_from_the_command_line(tmp_path, arm, label, name):
    out = tmp_path / "out"
    result = run_cli(["-m", *TINY, f"arm={arm}", f"paths.output_dir={out}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    [job] = list((out / "multirun").glob(f"*/0_{name}_adding_T10_s0"))
    summary = read_summary(job)
    assert (summary["arm"], summary["status"]) == (label, "completed")
    flow = np.load(job / "grad_flow.npz")
    assert flow["h"].shape[1] == 10 and np.isfinite(flow["h"]).all() and (flow["h"] > 0).all()
    assert math.isfinite(summary["val_loss"])
