"""The gradient observatory logs the right values, readable back from the real event files."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from conftest import TINY, compose_config, job_dir, read_summary, run_cli
from rnn_gradients.observatory.gate_stats import GateStatsLogger
from rnn_gradients.observatory.gradient_flow import GradFlowLogger
from rnn_gradients.observatory.gradient_histograms import GradHistogramLogger
from rnn_gradients.observatory.gradient_norms import GradNormLogger
from rnn_gradients.run import build

KEEP_ALL = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def events(log_dir: Path) -> EventAccumulator:
    """TensorBoard's own reader, keeping every sample (its default keeps one histogram per tag)."""
    accumulator = EventAccumulator(str(log_dir), size_guidance=KEEP_ALL)
    accumulator.Reload()
    return accumulator


def scalars(acc: EventAccumulator, tag: str) -> dict[int, float]:
    return {e.step: e.value for e in acc.Scalars(tag)}


class Recorder(pl.Callback):
    """Independent record of what happened each step: raw pre-clip gradients and weights before/after."""

    def __init__(self) -> None:
        self.grads: dict[int, dict[str, torch.Tensor]] = {}
        self.before: dict[int, dict[str, torch.Tensor]] = {}
        self.after: dict[int, dict[str, torch.Tensor]] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        step = trainer.global_step + 1
        named = dict(pl_module.network.named_parameters())
        self.grads[step] = {n: p.grad.detach().clone() for n, p in named.items()}
        self.before[step] = {n: p.detach().clone() for n, p in named.items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.after[trainer.global_step] = {n: p.detach().clone() for n, p in pl_module.network.named_parameters()}


def fit_in_process(tmp_path: Path, overrides: list[str], callbacks: list[pl.Callback], steps: int):
    cfg = compose_config(overrides)
    module, data = build(cfg)
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="tb", version="")
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, logger=logger, callbacks=callbacks, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        log_every_n_steps=1,
    )
    trainer.fit(module, datamodule=data)
    return cfg, module, Path(logger.log_dir)


@pytest.mark.parametrize("mode,threshold", [("norm", 0.05), ("value", 0.002), ("none", None)])
def test_grad_norms_match_torch_clip_and_recorded_updates(tmp_path, mode, threshold):
    overrides = ["model.hidden_size=16", "data.seq_len=20", "data.batch_size=16", f"clipping={mode}"]
    if threshold:
        overrides.append(f"clipping.threshold={threshold}")
    recorder = Recorder()
    _, _, log_dir = fit_in_process(tmp_path, overrides, [recorder, GradNormLogger()], steps=6)
    acc = events(log_dir)
    pre, post = scalars(acc, "grad_norm/total_preclip"), scalars(acc, "grad_norm/total_postclip")
    clipped = scalars(acc, "grad_norm/clipped")
    assert sorted(pre) == list(range(1, 7))
    for step, grads in recorder.grads.items():
        copies = [g.clone().requires_grad_() for g in grads.values()]
        for c, g in zip(copies, grads.values()):
            c.grad = g.clone()
        if mode == "norm":
            expected_pre = float(torch.nn.utils.clip_grad_norm_(copies, threshold))
        else:
            expected_pre = float(torch.nn.utils.get_total_norm([c.grad for c in copies]))
            if mode == "value":
                torch.nn.utils.clip_grad_value_(copies, threshold)
        expected_post = float(torch.nn.utils.get_total_norm([c.grad for c in copies]))
        assert pre[step] == pytest.approx(expected_pre, rel=1e-5)
        assert post[step] == pytest.approx(expected_post, rel=1e-5)
        if mode == "norm":
            assert clipped[step] == float(expected_pre > threshold)
            if expected_pre > threshold:
                assert post[step] == pytest.approx(threshold, rel=1e-5)
        elif mode == "none":
            assert clipped[step] == 0.0 and post[step] == pre[step]
        # per-tensor pre-clip norms and update/weight ratios
        for name, g in grads.items():
            assert scalars(acc, f"grad_norm/{name}")[step] == pytest.approx(float(g.norm()), rel=1e-5)
            w0, w1 = recorder.before[step][name], recorder.after[step][name]
            ratio = float((w1 - w0).norm() / w0.norm())
            assert scalars(acc, f"update_ratio/{name}")[step] == pytest.approx(ratio, rel=1e-4, abs=1e-9)
    if mode == "norm":
        assert all(clipped.values()), "with a tiny threshold every step is clipped"


def cell_time_grad_norms(net, task, x, y) -> tuple[np.ndarray, np.ndarray | None]:
    """Independent ||dL/dh_t||, ||dL/dc_t||: torch's own nn.RNNCell / nn.LSTMCell (one layer), sharing
    the network's parameters, stepped through time with retain_grad on every state."""
    rnn = net.rnn
    if net.cell.name == "lstm":
        cell = torch.nn.LSTMCell(rnn.input_size, rnn.hidden_size)
    else:
        cell = torch.nn.RNNCell(rnn.input_size, rnn.hidden_size, nonlinearity=rnn.nonlinearity)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(cell, name, getattr(rnn, f"{name}_l0"))
    h = torch.zeros(x.shape[0], rnn.hidden_size)
    c = torch.zeros_like(h)
    hs, cs = [], []
    for t in range(x.shape[1]):
        if net.cell.name == "lstm":
            h, c = cell(x[:, t], (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(x[:, t], h)
        h.retain_grad()
        hs.append(h)
    seq = torch.stack(hs, dim=1)
    pred = net.readout(seq[:, -1] if not task.per_step_output else seq)
    task.loss(pred, y).backward()
    h_norms = np.array([float(h.grad.norm()) for h in hs])
    c_norms = np.array([float(c.grad.norm()) for c in cs]) if cs else None
    return h_norms, c_norms


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_grad_flow_logged_curve_equals_independent_autograd(tmp_path, model):
    flow = GradFlowLogger(every_n_steps=2, probe_size=8, probe_seed=7, plot_every_n_steps=2, output_dir=str(tmp_path))
    overrides = [f"model={model}", "model.hidden_size=16", "data.seq_len=12", "data.batch_size=8"]
    cfg, module, log_dir = fit_in_process(tmp_path, overrides, [flow], steps=4)
    fresh, _ = build(cfg)  # same seed, same config: the weights at initialization
    x, y = fresh.task.sample(8, torch.Generator().manual_seed(7))
    h_expected, c_expected = cell_time_grad_norms(fresh.network, fresh.task, x, y)

    saved = np.load(tmp_path / "grad_flow.npz")
    assert list(saved["steps"]) == [0, 2, 4]
    np.testing.assert_allclose(saved["h"][0], h_expected, rtol=1e-4)
    acc = events(log_dir)
    T = len(h_expected)
    assert scalars(acc, "grad_flow/log10_ratio_h")[0] == pytest.approx(math.log10(h_expected[0] / h_expected[-1]), abs=1e-4)
    assert scalars(acc, f"grad_flow/h_t{T - 1:04d}")[0] == pytest.approx(h_expected[-1], rel=1e-4)
    assert len(acc.Histograms("grad_flow/h_through_time")) == 3
    assert len(acc.Images("grad_flow/plot")) == 3
    # the time-axis histogram: bucket t holds the decades of ||dL/dh_t|| above 1e-12 x max
    heights = np.array(acc.Histograms("grad_flow/h_through_time")[0].histogram_value.bucket)
    expected_heights = np.clip(np.log10(h_expected / h_expected.max()) + 12, 0, None)
    np.testing.assert_allclose(heights, expected_heights, atol=1e-3)
    if model == "lstm":
        np.testing.assert_allclose(saved["c"][0], c_expected, rtol=1e-4)
        assert scalars(acc, "grad_flow/log10_ratio_c")[0] == pytest.approx(math.log10(c_expected[0] / c_expected[-1]), abs=1e-4)
        # the final row is the trained network: it must differ from the init row
        assert not np.allclose(saved["c"][-1], saved["c"][0])
    else:
        assert saved["c"].size == 0 and "grad_flow/log10_ratio_c" not in acc.Tags()["scalars"]


def test_histograms_and_gate_stats_keep_every_step(tmp_path):
    callbacks = [GradHistogramLogger(every_n_steps=2, bins=16), GateStatsLogger(every_n_steps=2, probe_size=8)]
    recorder = Recorder()
    _, module, log_dir = fit_in_process(tmp_path, ["model.hidden_size=8", "data.seq_len=10"], [recorder, *callbacks], steps=6)
    acc = events(log_dir)
    hists = acc.Histograms("grad_hist/rnn.weight_hh_l0")
    assert [h.step for h in hists] == [1, 2, 4, 6]  # step 1 (first gradients), then every 2
    for h in hists:
        g = recorder.grads[h.step]["rnn.weight_hh_l0"]
        value = h.histogram_value
        assert value.num == g.numel() and sum(value.bucket) == g.numel()
        assert value.min == pytest.approx(float(g.min()), rel=1e-5) and value.max == pytest.approx(float(g.max()), rel=1e-5)
        assert value.sum == pytest.approx(float(g.sum()), rel=1e-4, abs=1e-7)
    forget = scalars(acc, "gates/forget_mean_l0")
    assert sorted(forget) == [0, 2, 4, 6]
    # forget bias 1 (the default) at init: mean forget gate near sigmoid(1) = 0.73
    assert forget[0] == pytest.approx(1 / (1 + math.exp(-1)), abs=0.08)
    assert len(acc.Histograms("gates/forget_l0")) == 4


def test_physics_at_initialization_rnn_vanishes_lstm_forget_bias_5_grows(tmp_path):
    """Length-100 adding task at init: ||dL/dh_0|| << ||dL/dh_99|| for the RNN; ||dL/dc_t|| grows back in
    time for an LSTM with forget bias 5 (the thesis in docs/references.md, and the README's measurement)."""
    ratios = {}
    for model, extra in (("rnn", []), ("lstm", ["model.forget_bias=5"])):
        flow = GradFlowLogger(every_n_steps=1000, output_dir=str(tmp_path / model))
        fit_in_process(tmp_path / model, [f"model={model}", "data.seq_len=100", *extra], [flow], steps=1)
        acc = events(tmp_path / model / "tb")
        ratios[model] = {k: scalars(acc, f"grad_flow/log10_ratio_{k}")[0] for k in ("h", "c") if f"grad_flow/log10_ratio_{k}" in acc.Tags()["scalars"]}
    assert ratios["rnn"]["h"] < -3, ratios  # vanishing: many orders of magnitude over 100 steps
    assert ratios["lstm"]["c"] > 0, ratios  # exploding side: the cell-state gradient grows backwards


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tensorboard_server_serves_the_observatory_tags(tmp_path):
    result = run_cli([*TINY, "trainer.max_steps=12", "callbacks.grad_histograms.every_n_steps=5", f"paths.output_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen(
        [str(tensorboard), "--logdir", str(tmp_path / "runs"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        tags: dict[str, dict] = {}
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                for plugin in ("scalars", "histograms", "images"):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/{plugin}/tags", timeout=5) as r:
                        tags[plugin] = json.load(r)
                if all(tags.get(p) for p in ("scalars", "histograms")):
                    break
            except OSError:
                pass
            time.sleep(1)
        run_tags = {p: next(iter(t.values()), {}) for p, t in tags.items()}
        assert {"grad_norm/total_preclip", "grad_norm/total_postclip", "grad_norm/clipped", "grad_flow/log10_ratio_h",
                "grad_flow/log10_ratio_c", "train/loss", "val/normalized_loss"} <= set(run_tags["scalars"])
        assert {"grad_hist/rnn.weight_hh_l0", "grad_flow/h_through_time", "grad_flow/c_through_time",
                "gates/forget_l0"} <= set(run_tags["histograms"])
        assert "grad_flow/plot" in run_tags["images"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_callbacks_switch_off_from_the_command_line(tmp_path):
    off = run_cli([*TINY, "callbacks=none", f"paths.output_dir={tmp_path / 'none'}"], cwd=tmp_path)
    one_off = run_cli([*TINY, "~callbacks.grad_flow", f"paths.output_dir={tmp_path / 'one'}"], cwd=tmp_path)
    assert off.returncode == 0 and one_off.returncode == 0, (off.stderr[-1500:], one_off.stderr[-1500:])
    tags_off = events(next((tmp_path / "none" / "runs").glob("*/tensorboard"))).Tags()["scalars"]
    tags_one = events(next((tmp_path / "one" / "runs").glob("*/tensorboard"))).Tags()["scalars"]
    assert "train/loss" in tags_off and not any(t.startswith(("grad_norm/", "grad_flow/")) for t in tags_off)
    assert "grad_norm/total_preclip" in tags_one and not any(t.startswith("grad_flow/") for t in tags_one)
    assert not list((tmp_path / "one" / "runs").glob("*/grad_flow.npz"))


def test_divergence_stops_the_run_and_the_sweep_goes_on(tmp_path):
    """SGD at lr 1 without clipping blows up the LSTM (NaN); the job is marked diverged, exits cleanly,
    and the next job of the multirun still runs."""
    args = ["-m", "optimizer=sgd", "optimizer.lr=1.0,0.01", "model.hidden_size=32", "data.seq_len=50",
            "trainer.max_steps=150", "trainer.val_check_interval=50", "trainer.enable_progress_bar=false",
            "model.forget_bias=5", f"paths.output_dir={tmp_path}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    sweep = next((tmp_path / "multirun").iterdir())
    blown, calm = read_summary(job_dir(sweep, 0)), read_summary(job_dir(sweep, 1))
    assert blown["status"] == "diverged" and blown["diverged"] is True
    assert blown["steps"] < 150 and blown["diverged_at_step"] <= blown["steps"]
    assert "non-finite" in blown["divergence_reason"] or "baseline" in blown["divergence_reason"]
    assert calm["status"] == "completed" and calm["steps"] == 150
    # the HParams outcome of each job says the same, at its last step
    for job, summary in ((0, blown), (1, calm)):
        acc = events(job_dir(sweep, job) / "tensorboard")
        assert scalars(acc, "hparams/diverged") == {summary["steps"]: float(summary["diverged"])}
        assert scalars(acc, "hparams/steps") == {summary["steps"]: float(summary["steps"])}
    assert scalars(events(job_dir(sweep, 0) / "tensorboard"), "hparams/diverged_at_step") == {blown["steps"]: blown["diverged_at_step"]}
    # ... and so does the HParams session's end status (tb_overview.END_STATUS)
    for job, status in ((0, api_pb2.STATUS_FAILURE), (1, api_pb2.STATUS_SUCCESS)):
        content = events(job_dir(sweep, job) / "tensorboard").PluginTagToContent("hparams")["_hparams_/session_end_info"]
        assert plugin_data_pb2.HParamsPluginData.FromString(content).session_end_info.status == status


@pytest.mark.parametrize("monitor_first", [True, False])
def test_the_cliff_recorder_gets_the_divergence_verdict_whatever_the_callback_order(tmp_path, monitor_first):
    """SGD at lr 1 blows the RNN's loss past 100 x baseline while it is still finite: only the divergence
    monitor's verdict (callback_interfaces.DivergenceVerdict) says so, and the recorder keeps the step
    before it whether Lightning calls the monitor before or after it."""
    from rnn_gradients.guards.divergence_monitor import DivergenceMonitor
    from rnn_gradients.observatory.cliff_recorder import LossCliffRecorder

    monitor, recorder = DivergenceMonitor(loss_multiple=100.0, warmup_steps=5), LossCliffRecorder(num_alphas=3, output_dir=tmp_path)
    overrides = ["model=rnn", "optimizer=sgd", "optimizer.lr=1.0", "clipping=none", "data.seq_len=10", "model.hidden_size=16"]
    fit_in_process(tmp_path, overrides, [monitor, recorder] if monitor_first else [recorder, monitor], steps=20)
    assert monitor.diverged_at is not None and "baseline" in monitor.reason  # the loss rule, not a non-finite loss
    assert recorder.records["before_divergence"]["step"] == monitor.diverged_at - 1
