"""The loss cliff recorder against an independent recomputation: the slice L(θ − α·g/‖g‖) on the recorded
batch, the step of the largest pre-clip norm, the step the optimizer took, and the step before a
divergence; then the real exploding sweep writes loss_cliff.npz beside each run."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from conftest import job_dir, read_summary, run_cli
from rnn_gradients.guards.divergence_monitor import DivergenceMonitor
from rnn_gradients.observatory.cliff_recorder import LossCliffRecorder
from test_observatory import Recorder, fit_in_process


class BatchRecorder(Recorder):
    """Recorder that also keeps each step's batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: dict[int, tuple] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches[trainer.global_step + 1] = batch


def loss_at(module, params: dict[str, torch.Tensor], batch) -> float:
    net = copy.deepcopy(module.network)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(params[name])
        x, y = batch
        return float(module.task.loss(net(x, last_only=not module.task.per_step_output), y))


def total_norm(grads: dict[str, torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads.values()])))


def check_record(record: dict, step: int, rec: BatchRecorder, module, landed: dict[str, torch.Tensor]) -> None:
    theta, grads, batch = rec.before[step], rec.grads[step], rec.batches[step]
    norm = total_norm(grads)
    assert record["step"] == step and record["grad_norm"] == pytest.approx(norm, rel=1e-6)
    for alpha, loss in zip(record["alphas"], record["losses"]):
        expected = loss_at(module, {n: theta[n] - alpha / norm * grads[n] for n in theta}, batch)
        assert loss == pytest.approx(expected, rel=1e-5, abs=1e-7) or (math.isnan(loss) and not math.isfinite(expected))
    assert record["loss0"] == pytest.approx(loss_at(module, theta, batch), rel=1e-6)
    moved = math.sqrt(sum(float((landed[n] - theta[n]).norm()) ** 2 for n in theta))
    assert record["actual_alpha"] == pytest.approx(moved, rel=1e-5)
    assert record["actual_loss"] == pytest.approx(loss_at(module, landed, batch), rel=1e-5)


def test_slice_at_the_largest_norm_matches_a_recomputation(tmp_path):
    overrides = ["model.hidden_size=16", "data.seq_len=20", "data.batch_size=16", "optimizer=sgd", "optimizer.lr=0.3",
                 "clipping=norm", "clipping.threshold=0.5"]
    rec, cliff = BatchRecorder(), LossCliffRecorder(num_alphas=7, output_dir=tmp_path)
    _, module, _ = fit_in_process(tmp_path, overrides, [rec, cliff], steps=12)
    norms = {step: total_norm(g) for step, g in rec.grads.items()}
    steepest = max(norms, key=norms.get)
    record = cliff.records["max_norm"]
    check_record(record, steepest, rec, module, landed=rec.after[steepest])
    assert "before_divergence" not in cliff.records
    saved = np.load(tmp_path / "loss_cliff.npz")
    assert saved["max_norm_step"] == steepest and saved["baseline_loss"] == pytest.approx(module.task.baseline_loss)
    np.testing.assert_allclose(saved["max_norm_losses"], record["losses"])


def test_the_step_before_a_divergence_is_recorded(tmp_path):
    """Unclipped SGD at lr 1 on the LSTM blows up; the record is of the update that went over the edge."""
    overrides = ["model.hidden_size=32", "data.seq_len=50", "optimizer=sgd", "optimizer.lr=1.0", "model.forget_bias=5"]
    rec, cliff, monitor = BatchRecorder(), LossCliffRecorder(num_alphas=5, output_dir=tmp_path), DivergenceMonitor(warmup_steps=0)
    _, module, _ = fit_in_process(tmp_path, overrides, [monitor, rec, cliff], steps=60)
    assert monitor.diverged_at is not None
    record = cliff.records["before_divergence"]
    step = monitor.diverged_at - 1
    check_record(record, step, rec, module, landed=rec.before[monitor.diverged_at])
    assert record["actual_loss"] > record["loss0"]  # the step went up the wall


def first_uphill_step(rec: BatchRecorder, module, factor: float = 2.0) -> int | None:
    """The first step whose update took the loss on its own batch to factor× (or to a non-finite value)."""
    for step in sorted(rec.after):
        before, after = (loss_at(module, params[step], rec.batches[step]) for params in (rec.before, rec.after))
        if not after < factor * before:
            return step
    return None


@pytest.mark.parametrize("clipping, expect_one", [("clipping=none", True), ("clipping=norm", False)])
def test_the_first_uphill_step_is_the_first_that_doubled_its_batch_loss(tmp_path, clipping, expect_one):
    """Unclipped SGD at lr 0.5 jumps the wall early; norm clipping at 0.1 never doubles a batch loss."""
    overrides = ["model.hidden_size=32", "data.seq_len=50", "optimizer=sgd", "optimizer.lr=0.5", clipping,
                 "clipping.threshold=0.1"]
    rec, cliff = BatchRecorder(), LossCliffRecorder(num_alphas=5, output_dir=tmp_path)
    _, module, _ = fit_in_process(tmp_path, overrides, [rec, cliff], steps=15)
    expected = first_uphill_step(rec, module)
    assert (expected is not None) == expect_one
    if expected is None:
        assert "first_uphill" not in cliff.records
        return
    record = cliff.records["first_uphill"]
    check_record(record, expected, rec, module, landed=rec.after[expected])
    assert not record["actual_loss"] < 2 * record["loss0"]
    saved = np.load(tmp_path / "loss_cliff.npz")
    assert int(saved["first_uphill_step"]) == expected


def test_exploding_sweep_writes_the_cliff_beside_each_run(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "experiment=exploding", "profile=smoke", "hydra/launcher=basic", "optimizer=sgd",
                      "optimizer.lr=1.0", "clipping=none,norm", "trainer.enable_progress_bar=false",
                      f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for job in (0, 1):
        cliff = np.load(job_dir(sweep, job) / "loss_cliff.npz")
        summary = read_summary(job_dir(sweep, job))
        assert 1 <= int(cliff["max_norm_step"]) <= summary["steps"]
        assert cliff["max_norm_alphas"].shape == (21,) and cliff["max_norm_alphas"][0] == pytest.approx(1e-4)
        if summary["diverged"]:
            assert int(cliff["before_divergence_step"]) == summary["diverged_at_step"] - 1
