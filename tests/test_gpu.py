"""trainer=gpu on a real GPU: cuDNN's fused kernels against the unrolled reference, and 16-mixed
precision with a real GradScaler (clipping sees unscaled gradients; the scaler's skipped steps are
not divergence).

Every test is marked `gpu` and skips without CUDA: run them with `pytest -m gpu tests/test_gpu.py` on a
GPU machine (scripts/gpu_check.sh does). Each test body is a `check_*` function taking the device, so
the same logic can be dry-run on a CPU (16-mixed on a CPU needs an explicit scaler plugin and an RNN:
see tests/test_clipping.py).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from conftest import TINY, compose_config, read_summary, run_cli
from rnn_gradients.guards.divergence_monitor import DivergenceMonitor
from rnn_gradients.observatory.probe import time_gradient_norms
from rnn_gradients.run import build
from rnn_gradients.tasks.copy import Copy as CopyTask
from test_probe import CELL_IDS, CELLS, make_net, param_grads
from unrolled_twin import unrolled_forward

CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: torch.cuda.is_available() is False"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*"),
]

# float32 against a float64 oracle: ~100x fp32 rounding at these sizes (the CPU's fused float32 kernels
# meet it), with TF32 off: on Ampere or newer torch lets cuDNN's RNNs use TF32 by default, a 10-bit
# mantissa and ~1e-3 relative error, which is a precision choice, not a bug this test is after.
F32_TOL = {"rtol": 1e-4, "atol": 1e-5}
F64_TOL = {"rtol": 1e-9, "atol": 1e-9}  # what the CPU test asks of the fused CPU kernels
# An fp16 forward/backward against a float64 one: the norm of the whole gradient agrees to ~1e-4 (RNN,
# CPU autocast) - 1e-3; the failure this guards against (a GradScaler-scaled norm) is off by >= 1024x.
FP16_NORM_REL = 1e-2


# ----------------------------------------------------------------------------- cuDNN == unrolled


def check_fused_matches_unrolled(device: str, cell: str, nonlinearity: str, num_layers: int, last_only: bool,
                                 dtype: torch.dtype) -> None:
    net = make_net(cell, nonlinearity, num_layers, hidden=32, forget_bias=1.0 if cell == "lstm" else None)
    g = torch.Generator().manual_seed(1)
    x64 = torch.randn(8, 30, 3, generator=g, dtype=torch.float64)
    target64 = torch.randn((8, 2) if last_only else (8, 30, 2), generator=g, dtype=torch.float64)

    # oracle: the unrolled twin in float64 on the CPU (itself checked against the CPU kernels to 1e-9)
    oracle_out, _ = unrolled_forward(net, x64, last_only=last_only)
    ((oracle_out - target64) ** 2).sum().backward()
    oracle_grads = param_grads(net)
    net.zero_grad(set_to_none=True)

    net = net.to(device=device, dtype=dtype)
    x, target = x64.to(device, dtype), target64.to(device, dtype)
    if device == "cuda":
        assert torch.backends.cudnn.is_acceptable(x), "cuDNN would not run this RNN"
    tol = F64_TOL if dtype == torch.float64 else F32_TOL
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        fused = net(x, last_only=last_only)
        ((fused - target) ** 2).sum().backward()
        fused_grads = param_grads(net)
        net.zero_grad(set_to_none=True)
        unrolled, _ = unrolled_forward(net, x, last_only=last_only)  # the same parameters, on the device
        ((unrolled - target) ** 2).sum().backward()
        unrolled_grads = param_grads(net)

    torch.testing.assert_close(fused, unrolled, **tol)
    torch.testing.assert_close(fused.cpu().double(), oracle_out.detach(), **tol)
    assert fused_grads.keys() == unrolled_grads.keys() == oracle_grads.keys()
    for name, grad in fused_grads.items():
        assert grad.abs().max() > 0, name  # every parameter really gets a gradient
        torch.testing.assert_close(grad, unrolled_grads[name], **tol, msg=name)
        torch.testing.assert_close(grad.cpu().double(), oracle_grads[name], **tol, msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("last_only", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell,nonlinearity", CELLS, ids=CELL_IDS)
def test_cudnn_matches_unrolled_reference(cell, nonlinearity, num_layers, last_only, dtype):
    check_fused_matches_unrolled("cuda", cell, nonlinearity, num_layers, last_only, dtype)


def check_time_gradients_on_device(device: str, cell: str, nonlinearity: str) -> None:
    """The observatory's probe (GradFlowLogger) runs time_gradient_norms in float64 on the training
    device: on the GPU it must give the CPU's numbers."""
    task = CopyTask(6)
    kw = {"input_size": task.input_size, "hidden": 16, "output": task.output_size, "init": "orthogonal",
          "forget_bias": 1.0 if cell == "lstm" else None}
    x, y = task.sample(5, torch.Generator().manual_seed(4))
    cpu = time_gradient_norms(make_net(cell, nonlinearity, 2, **kw), task, x.double(), y)
    dev = time_gradient_norms(make_net(cell, nonlinearity, 2, **kw).to(device), task, x.double().to(device), y.to(device))
    assert dev.loss == pytest.approx(cpu.loss, rel=1e-9)
    assert sorted(dev.norms) == sorted(cpu.norms)
    for name, norms in cpu.norms.items():
        torch.testing.assert_close(dev.norms[name].cpu(), norms, rtol=1e-7, atol=0, msg=name)


@pytest.mark.parametrize("cell,nonlinearity", CELLS, ids=CELL_IDS)
def test_time_gradient_norms_on_gpu_match_cpu(cell, nonlinearity):
    check_time_gradients_on_device("cuda", cell, nonlinearity)


# ----------------------------------------------------------------------------- 16-mixed, real Trainer


class StepRecorder(pl.Callback):
    """Per optimizer step: the true gradient norm of this step's batch at this step's weights (an
    autograd pass of its own, on a float64 CPU copy: no autocast, no scaler, no cuDNN), the scaler's
    scale, whether the weights moved, and the clipper's pre/post-clip norms."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._before: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        x, y = (t.cpu() for t in batch)
        twin = copy.deepcopy(pl_module.network).to("cpu", torch.float64)
        with torch.autocast(device_type=batch[0].device.type, enabled=False):
            predictions = twin(x.double(), last_only=not pl_module.task.per_step_output)
            loss = pl_module.task.loss(predictions, y.double() if y.is_floating_point() else y)
            grads = torch.autograd.grad(loss, list(twin.parameters()))
        true_norm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
        self._before = [p.detach().clone() for p in pl_module.parameters()]
        self.rows.append({"true_norm": true_norm})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.rows[-1]["scale"] = trainer.precision_plugin.scaler.get_scale()  # the scale of this backward

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stats = pl_module.clipper.last
        moved = any(not torch.equal(p, q) for p, q in zip(pl_module.parameters(), self._before))
        self.rows[-1].update(pre=float(stats.preclip_norm), post=float(stats.postclip_norm), moved=moved)


def fit_mixed(model: str, trainer_kwargs: dict[str, Any], max_steps: int, threshold: float) -> tuple[list[dict], DivergenceMonitor, pl.Trainer]:
    """A real Trainer with `trainer_kwargs` (accelerator + precision or a precision plugin), the template's
    module and data, Adam, norm clipping at `threshold`, and the template's DivergenceMonitor."""
    cfg = compose_config([f"model={model}", "model.hidden_size=16", "data.seq_len=20", "data.batch_size=16",
                          "clipping=norm", f"clipping.threshold={threshold}"])
    module, data = build(cfg)
    recorder, divergence = StepRecorder(), DivergenceMonitor()
    trainer = pl.Trainer(
        devices=1, max_steps=max_steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[recorder, divergence],
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule=data)
    return recorder.rows, divergence, trainer


def check_clipping_sees_unscaled_gradients(model: str, trainer_kwargs: dict[str, Any]) -> None:
    threshold = 0.01
    rows, divergence, trainer = fit_mixed(model, trainer_kwargs, max_steps=8, threshold=threshold)
    assert rows[0]["scale"] == 65536.0, rows  # Lightning's GradScaler starts at 2**16
    finite = [r for r in rows if math.isfinite(r["pre"])]
    assert len(finite) >= 2, rows  # most steps are taken (a skipped one is an overflow: see below)
    for r in finite:
        assert r["scale"] >= 1024, r  # the backward ran scaled by this much ...
        assert r["pre"] == pytest.approx(r["true_norm"], rel=FP16_NORM_REL), r  # ... the clipper measured it unscaled
        assert r["true_norm"] > 10 * threshold, r  # so clipping had to act
        assert r["post"] == pytest.approx(threshold, rel=1e-4), r  # and clipped it in true units
        assert r["moved"], r
    assert divergence.diverged_at is None and trainer.global_step == 8


@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_16_mixed_clipping_sees_unscaled_gradients(model):
    cfg = compose_config(["trainer=gpu"])  # the settings trainer=gpu runs with
    check_clipping_sees_unscaled_gradients(model, {"accelerator": cfg.trainer.accelerator,
                                                   "precision": cfg.trainer.precision})


def check_scaler_overflow_is_not_divergence(model: str, trainer_kwargs: dict[str, Any]) -> None:
    """A scale of 2**24 makes the first backward passes overflow fp16 (any gradient element above 0.004
    does); the GradScaler skips those steps (weights unchanged, scale halved) until its scale fits (on a
    CPU RNN: 9 steps), then training goes on."""
    rows, divergence, trainer = fit_mixed(model, trainer_kwargs, max_steps=30, threshold=1.0)
    assert divergence.diverged_at is None, (divergence.reason, rows)
    skipped = [r for r in rows if not r["moved"]]
    assert len(skipped) >= 3, rows  # the overflows happened ...
    for r in skipped:
        assert not math.isfinite(r["pre"]), r  # ... and the monitor saw their non-finite gradient norms
    for before, after in zip(rows, rows[1:]):  # a skipped step halves the scale, a taken one keeps it
        assert after["scale"] == (before["scale"] / 2 if not before["moved"] else before["scale"]), (before, after)
    assert rows[-1]["moved"] and math.isfinite(rows[-1]["pre"]), rows  # training resumed
    assert trainer.global_step == 30 and not trainer.should_stop


@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_scaler_overflow_steps_are_not_divergence(model):
    from lightning.pytorch.plugins.precision import MixedPrecision

    # precision="16-mixed" with the scaler chosen: Lightning refuses both a precision flag and a plugin
    plugin = MixedPrecision("16-mixed", "cuda", scaler=torch.amp.GradScaler("cuda", init_scale=2.0**24))
    check_scaler_overflow_is_not_divergence(model, {"accelerator": "gpu", "plugins": [plugin]})


# ----------------------------------------------------------------------------- the command line


def test_cli_run_on_trainer_gpu_completes(tmp_path):
    """The real command on trainer=gpu with the default callbacks (observatory, float64 probes on the
    GPU, checkpoints, TensorBoard): it completes, on the GPU, with finite losses."""
    out = tmp_path / "out"
    proc = run_cli(["trainer=gpu", "model=lstm", "data=adding", *TINY, f"paths.output_dir={out}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "GPU available: True" in proc.stdout + proc.stderr
    (run_dir,) = (out / "runs").iterdir()
    s = read_summary(run_dir)
    assert s["status"] == "completed" and s["steps"] == 4, s
    assert math.isfinite(s["train_loss"]) and math.isfinite(s["val_normalized_loss"]), s
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "grad_flow.npz").is_file()
