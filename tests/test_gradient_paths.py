"""The two paths of the LSTM's ∂L/∂c_t (carry through c_{t+1}, output through h_t): they add up to the
autograd gradient, the probe keeps their norms in grad_flow.npz and across a resume, and the figure and
the summary tables read them (an older grad_flow.npz without them still loads: the figure skips)."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import compose_config, run_cli
from handmade_sweep import write_job
from run_checks import assert_same_grad_flow
from rnn_gradients.analysis import gradient_paths_data, gradient_paths_table, load_runs
from rnn_gradients.figures import gradient_paths
from rnn_gradients.figures.style import FigureSkipped
from rnn_gradients.observatory.gradient_flow import GradFlowLogger
from rnn_gradients.observatory.probe import time_gradient_norms
from unrolled_twin import cell_gradient_paths, unrolled_forward
from rnn_gradients.run import build

PROBE, PROBE_SEED = 6, 11


def small_lstm(num_layers: int, model: str = "lstm", forget_bias: float = 1.0):
    cfg = compose_config([f"model={model}", "model.hidden_size=5", "data.seq_len=7", f"model.num_layers={num_layers}"]
                         + ([f"model.forget_bias={forget_bias}"] if model == "lstm" else []))
    module, _ = build(cfg)
    module.network.double()
    x, y = module.task.sample(PROBE, torch.Generator().manual_seed(PROBE_SEED))
    return module, x.double(), (y.double() if y.is_floating_point() else y)


def independent_paths(net, task, x, y, layer: int):
    """Unroll with torch's own LSTMCell on the fused parameters, retain_grad on every h_t and c_t; the
    gates f_t, o_t recomputed from the same inputs. Returns (carry, output, ∂L/∂c_t), each (T, B, H)."""
    rnn, layer_input = net.rnn, x
    per_layer = []
    for k in range(rnn.num_layers):
        cell = torch.nn.LSTMCell(rnn.input_size if k == 0 else rnn.hidden_size, rnn.hidden_size).double()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(cell, name, getattr(rnn, f"{name}_l{k}"))
        h = c = x.new_zeros(x.shape[0], rnn.hidden_size)
        hs, cs, fs, os_ = [], [], [], []
        for t in range(x.shape[1]):
            pre = layer_input[:, t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
            _, f, _, o = pre.detach().chunk(4, dim=1)
            h, c = cell(layer_input[:, t], (h, c))
            h.retain_grad()
            c.retain_grad()
            hs.append(h), cs.append(c), fs.append(torch.sigmoid(f)), os_.append(torch.sigmoid(o))
        per_layer.append((hs, cs, fs, os_))
        layer_input = torch.stack(hs, dim=1)
    task.loss(net.readout(layer_input[:, -1] if not task.per_step_output else layer_input), y).backward()
    hs, cs, fs, os_ = per_layer[layer]
    grad_c = torch.stack([c.grad for c in cs])
    carry = torch.zeros_like(grad_c)
    carry[:-1] = torch.stack(fs[1:]) * grad_c[1:]
    output = torch.stack([o * (1 - torch.tanh(c.detach()) ** 2) * h.grad for o, c, h in zip(os_, cs, hs)])
    return carry, output, grad_c


def measure_with_callback(module, tmp_path: Path, layer: int, steps=(0,)) -> GradFlowLogger:
    """GradFlowLogger.measure on the probe batch, outside a Trainer (no logger: only grad_flow.npz)."""
    flow = GradFlowLogger(probe_size=PROBE, probe_seed=PROBE_SEED, layer=layer, output_dir=str(tmp_path))
    x, y = module.task.sample(PROBE, torch.Generator().manual_seed(PROBE_SEED))
    flow._probe = (x, y)
    for step in steps:
        flow.measure(types.SimpleNamespace(global_step=step, loggers=[]), module)
    return flow


@pytest.mark.parametrize(("num_layers", "layer"), [(1, -1), (2, -1), (2, 0)])
def test_carry_and_output_add_up_to_the_autograd_cell_gradient(tmp_path, num_layers, layer):
    module, x, y = small_lstm(num_layers)
    carry, output, grad_c = independent_paths(module.network, module.task, x, y, layer)
    scale = grad_c.abs().max()
    torch.testing.assert_close(carry + output, grad_c, rtol=0, atol=1e-9 * float(scale))
    assert torch.equal(carry[-1], torch.zeros_like(carry[-1]))  # no carry path out of the last step
    assert bool((carry[:-1] != 0).any()) and bool((output != 0).all())
    # the twin's split of its own pass: the same vectors
    with torch.enable_grad():
        predictions, trace = unrolled_forward(module.network, x, last_only=not module.task.per_step_output)
        loss = module.task.loss(predictions, y)
        grads = torch.autograd.grad(loss, trace.hidden[layer] + trace.cell[layer])
    T = x.shape[1]
    ref_carry, ref_output = map(torch.stack, cell_gradient_paths(trace, layer, grads[:T], grads[T:]))
    torch.testing.assert_close(ref_carry, carry, rtol=1e-9, atol=1e-12 * float(scale))
    torch.testing.assert_close(ref_output, output, rtol=1e-9, atol=1e-12 * float(scale))
    # what the probe keeps: the norms (over batch and units) of these vectors, at every t
    result = time_gradient_norms(module.network, module.task, x, y, layer=layer)
    np.testing.assert_allclose(result.norms["c_via_carry"].numpy(), carry.flatten(1).norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.norms["c_via_output"].numpy(), output.flatten(1).norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.norms["c"].numpy(), grad_c.flatten(1).norm(dim=1).numpy(), rtol=1e-10)
    measure_with_callback(module, tmp_path, layer)
    saved = np.load(tmp_path / "grad_flow.npz")
    assert saved["c_via_carry"].shape == saved["c_via_output"].shape == saved["c"].shape == (1, T)
    np.testing.assert_allclose(saved["c_via_carry"][0], carry.flatten(1).norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(saved["c_via_output"][0], output.flatten(1).norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(saved["c"][0], grad_c.flatten(1).norm(dim=1).numpy(), rtol=1e-10)
    assert saved["c_via_carry"][0, -1] == 0


def test_rnn_keeps_empty_paths_and_the_state_survives_weights_only_load(tmp_path):
    module, _, _ = small_lstm(1, model="rnn")
    flow = measure_with_callback(module, tmp_path, -1, steps=(0, 3))
    saved = np.load(tmp_path / "grad_flow.npz")
    assert saved["c"].shape == saved["c_via_carry"].shape == saved["c_via_output"].shape == (0, 0)
    lstm, _, _ = small_lstm(1)
    flow = measure_with_callback(lstm, tmp_path, -1, steps=(0, 3))
    torch.save(flow.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    restored = GradFlowLogger(output_dir=str(tmp_path / "restored"))
    restored.load_state_dict(state)
    for key in ("h", "c", "c_via_carry", "c_via_output"):
        np.testing.assert_array_equal(np.stack(restored.curves[key]), np.stack(flow.curves[key]))
    # a checkpoint from before the paths were measured: NaN rows (not measured) for its steps
    old = {k: v for k, v in state.items() if k not in ("c_via_carry", "c_via_output")}
    restored.load_state_dict(old)
    restored._probe = flow._probe
    restored.measure(types.SimpleNamespace(global_step=6, loggers=[]), lstm)
    carry = np.stack(restored.curves["c_via_carry"])
    assert carry.shape == (3, 7) and np.isnan(carry[:2]).all() and np.isfinite(carry[2]).all()


SMALL = ["model.hidden_size=8", "data.seq_len=12", "data.batch_size=8", "data.val_size=32", "num_threads=1",
         "trainer.enable_progress_bar=false", "trainer.val_check_interval=10", "trainer.log_every_n_steps=1",
         "checkpoint.every_n_steps=7", "callbacks.grad_flow.every_n_steps=4", "callbacks.grad_flow.probe_size=8"]


def test_resumed_run_continues_the_paths(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert run_cli([*SMALL, "trainer.max_steps=20", f"hydra.run.dir={full}"], cwd=tmp_path).returncode == 0
    assert run_cli([*SMALL, "trainer.max_steps=12", f"hydra.run.dir={part}"], cwd=tmp_path).returncode == 0
    resumed = run_cli([*SMALL, "trainer.max_steps=20", f"hydra.run.dir={part}", "ckpt_path=last"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_grad_flow(full, part)  # steps, h, c, loss and both paths
    saved = np.load(part / "grad_flow.npz")
    assert saved["steps"].tolist() == [0, 4, 8, 12, 16, 20]
    assert saved["c_via_carry"].shape == saved["c"].shape and np.isfinite(saved["c_via_output"]).all()


def paths_flow(carry_slope: float, output_slope: float, output_scale: float, T: int = 30) -> dict:
    t = np.arange(T)
    carry = np.exp(-carry_slope * (T - 1 - t))
    carry[-1] = 0.0
    output = output_scale * np.exp(-output_slope * (T - 1 - t))
    return {"steps": np.array([0, 20]), "h": np.ones((2, T)), "c": np.stack([carry + output] * 2),
            "loss": np.array([0.2, 0.2]), "c_via_carry": np.stack([carry, carry * 2]), "c_via_output": np.stack([output] * 2)}


def test_figure_and_table_read_the_paths_and_skip_old_files(tmp_path):
    root = tmp_path / "sweep"
    for job, (fb, seed, slopes) in enumerate(((0.0, 0, (0.5, 0.1, 2)), (0.0, 1, (0.7, 0.1, 2)), (5.0, 0, (0.0, 0.3, 0.5)))):
        write_job(root / str(job), experiment="forget_bias", forget_bias=fb, seq_len=30, seed=seed,
                  grad_flow=paths_flow(*slopes))
    runs = load_runs([root], events=False, warn=False)
    data = gradient_paths_data(runs)
    assert list(data["biases"]) == [0.0, 5.0] and data["seq_len"] == 30
    fb0 = data["biases"][0.0]
    assert fb0["seeds"] == [0, 1] and fb0["final_step"] == 20
    expected = np.median([paths_flow(0.5, 0.1, 2)["c_via_carry"][0], paths_flow(0.7, 0.1, 2)["c_via_carry"][0]], axis=0)
    np.testing.assert_allclose(fb0["init"]["carry"], expected)
    assert not fb0["carry_dominates_init"][:-1].any() and data["biases"][5.0]["carry_dominates_init"][:-1].all()
    rows = {r["forget_bias"]: r for r in gradient_paths_table(runs)}
    # t=0: carry exp(-29 a), output scale exp(-29 b); median over the two bias-0 seeds
    split0 = np.median([np.log10(np.exp(-29 * a) / (2 * np.exp(-2.9))) for a in (0.5, 0.7)])
    assert rows[0.0]["log10_carry_over_output_t0_init"] == pytest.approx(split0)
    assert rows[5.0]["log10_carry_over_output_t0_init"] == pytest.approx(np.log10(1 / (0.5 * np.exp(-8.7))))
    assert rows[0.0]["n_seeds"] == 2
    result = gradient_paths.draw(runs, tmp_path)
    assert (tmp_path / "gradient_paths.png").is_file() and "output > carry at every t < 29" in result.caption
    # an old grad_flow.npz (no path keys) still loads; the figure skips and says why
    old = tmp_path / "old"
    flow = {k: v for k, v in paths_flow(0.5, 0.1, 2).items() if not k.startswith("c_via")}
    write_job(old / "0", experiment="forget_bias", forget_bias=0.0, seq_len=30, grad_flow=flow)
    old_runs = load_runs([old], events=False, warn=False)
    assert old_runs[0].grad_flow is not None and old_runs[0].grad_flow.c_carry is None
    with pytest.raises(FigureSkipped, match="predate"):
        gradient_paths.draw(old_runs, tmp_path)
    assert gradient_paths_table(old_runs) == []
