"""The orthogonal RNN stays on the orthogonal group, and the spectrum logger's numbers are the recurrent
matrices' own: checked against numpy's SVD and eigenvalues of the weights in the run's checkpoint, and read
back from the event file as TensorBoard shows them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import TINY, compose_config, run_cli
from rnn_gradients import contract
from rnn_gradients.networks import network_for
from rnn_gradients.tasks.adding import Adding
from test_cli import read_scalars


def _train(net: torch.nn.Module, steps: int, lr: float) -> None:
    task, generator = Adding(12), torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        x, y = task.sample(8, generator)
        loss = torch.nn.functional.mse_loss(net(x, last_only=True).squeeze(-1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley"])
def test_orthogonal_rnn_trains_on_the_orthogonal_group(orthogonal_map):
    torch.manual_seed(0)
    net = network_for("orthogonal_rnn", 2, 1, hidden_size=16, num_layers=2, orthogonal_map=orthogonal_map)
    before = [getattr(net.rnn, f"weight_hh_l{k}").detach().clone() for k in range(2)]
    _train(net, steps=30, lr=0.05)  # a large step: W_hh moves far, and stays orthogonal
    for layer in range(2):
        w = getattr(net.rnn, f"weight_hh_l{layer}").detach().double()
        assert (w - before[layer]).norm() > 0.1
        torch.testing.assert_close(w.T @ w, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.linalg.svd(w.numpy(), compute_uv=False), 1.0, atol=1e-5)
    # the fused kernel runs h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) with that W_hh (written out)
    x = torch.randn(3, 7, 2)
    h, states = torch.zeros(3, 16), []
    r = net.rnn
    for t in range(7):
        h = torch.tanh(x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0)
        states.append(h)
    view = net.cell.layers(net.rnn)[0]
    torch.testing.assert_close(view(x)[0], torch.stack(states, 1), rtol=1e-5, atol=1e-6)


def test_orthogonal_rnn_copies_after_a_backward_pass():
    """The probe deep-copies the network after training steps: a parametrized nn.RNN refused that (its
    weight cache held a graph node). The copy computes what the original does, and is independent of it."""
    torch.manual_seed(0)
    net = network_for("orthogonal_rnn", 2, 1, hidden_size=8)
    _train(net, steps=2, lr=0.01)
    x = torch.randn(4, 5, 2)
    replica = copy.deepcopy(net)
    torch.testing.assert_close(replica(x, last_only=False), net(x, last_only=False), rtol=0, atol=0)
    _train(net, steps=2, lr=0.05)
    assert not torch.equal(replica.rnn.weight_hh_l0, net.rnn.weight_hh_l0)


def test_spectrum_cadence_follows_the_grad_flow():
    assert compose_config(["callbacks.grad_flow.every_n_steps=7"]).callbacks.spectrum.every_n_steps == 7
    assert compose_config(["~callbacks.grad_flow"]).callbacks.spectrum.every_n_steps == 250


@pytest.mark.parametrize("model,blocks", [("lstm", {"input": 4, "forget": 4, "cell": 1, "output": 4}),
                                          ("orthogonal_rnn", {"hh": 1})])
def test_spectrum_is_the_checkpoints_own(tmp_path, model, blocks):
    run = tmp_path / "run"
    result = run_cli([*TINY, f"model={model}", "trainer.max_steps=6", "callbacks.grad_flow.every_n_steps=3",
                      "optimizer.lr=0.05", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = np.load(run / contract.SPECTRUM_FILE)
    assert saved["steps"].tolist() == [0, 3, 6]
    state = torch.load(run / contract.CHECKPOINT_DIR / contract.LAST_CHECKPOINT, weights_only=True)["state_dict"]
    net = network_for(model, 2, 1, hidden_size=16)
    net.load_state_dict({k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")})
    w_hh = net.rnn.weight_hh_l0.detach().double().numpy()
    scalars = read_scalars(run)
    for block, matrix in zip(blocks, np.split(w_hh, len(blocks)), strict=True):
        name = f"l0_{block}"
        sigma, radius = np.linalg.svd(matrix, compute_uv=False).max(), np.abs(np.linalg.eigvals(matrix)).max()
        np.testing.assert_allclose(saved[contract.spectrum_key("sigma_max", name)][-1], sigma, rtol=1e-12)
        np.testing.assert_allclose(saved[contract.spectrum_key("radius", name)][-1], radius, rtol=1e-10)
        assert saved[contract.spectrum_key("bound", name)].tolist() == [blocks[block]] * 3
        tag = contract.spectrum_tag("sigma_max", name)
        assert sorted(scalars[tag]) == [0, 3, 6] and scalars[tag][6] == pytest.approx(sigma, rel=1e-6)
    if model == "orthogonal_rnn":  # 1 at every step, to 1e-5
        np.testing.assert_allclose(saved["sigma_max_l0_hh"], 1.0, atol=1e-5)
    else:  # the weights moved: the values change across steps
        assert len(set(saved["sigma_max_l0_forget"].tolist())) == 3


@pytest.mark.parametrize("override,message", [
    ("callbacks.spectrum.every_n_steps=0", "callbacks.spectrum.every_n_steps=0 is not allowed"),
    ("+model.forget_init=chrono", "model.forget_init='chrono' is not allowed: the chosen model"),  # GRU: no forget gate
])
def test_bad_cure_settings_are_refused_before_a_folder(tmp_path, override, message):
    run = tmp_path / "run"
    result = run_cli(["model=gru", override, f"hydra.run.dir={run}"], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not run.exists()


@pytest.mark.parametrize("layer", [-1, 0])
def test_modrelu_orthogonal_rnn_is_expRNNs_cell_and_probed_exactly(layer):
    """modrelu(z) = z/|z| · relu(|z| + b) (expRNN's formula, written here with the quotient), no other bias;
    henaff init: W_hh a block rotation; the probe's ∂L/∂h_t equals the perturbation computation."""
    from test_probe import perturbed_state_gradients

    from rnn_gradients.observatory.probe import state_gradients

    torch.manual_seed(0)
    task = Adding(6)
    net = network_for("orthogonal_rnn", task.input_size, task.output_size, hidden_size=6, num_layers=2,
                      nonlinearity="modrelu", orthogonal_init="henaff").double()
    first = net.rnn[0]
    w = first.weight_hh.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-6)  # built in float32
    assert torch.count_nonzero(w) == 12  # three 2 x 2 rotation blocks
    x, y = task.sample(5, torch.Generator().manual_seed(1))
    x, y = x.double(), y.double()
    h, states = torch.zeros(5, 6, dtype=torch.float64), []
    for t in range(6):
        z = x[:, t] @ first.weight_ih.T + h @ w.T
        h = z / z.abs() * torch.relu(z.abs() + first.modrelu_bias)
        states.append(h)
    torch.testing.assert_close(first(x)[0], torch.stack(states, 1), rtol=1e-12, atol=1e-12)
    probe = state_gradients(net, task, x, y, layer=layer)
    reference = perturbed_state_gradients(net, task, x, y, layer)
    assert probe.grads["h"].abs().max() > 0
    torch.testing.assert_close(probe.grads["h"], reference["h"], rtol=1e-9, atol=1e-12)
    assert sorted(net.cell.recurrent_matrices(net.rnn)) == ["l0_hh", "l1_hh"]


def test_orthogonal_constraint_refuses_a_non_square_matrix():
    from rnn_gradients.cells._orthogonal_layers import constrain

    layer = torch.nn.Linear(3, 5)  # torch's parametrization would accept it as semi-orthogonal
    with pytest.raises(ValueError, match=r"weight has shape \(5, 3\): the orthogonal constraint needs a square matrix"):
        constrain(layer, "weight", "haar", "matrix_exp")
    assert not torch.nn.utils.parametrize.is_parametrized(layer)
