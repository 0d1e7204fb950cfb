"""GradientClipper inside a real Lightning step: pre-clip norms, clipped updates, 16-mixed unscaling."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from conftest import compose_config
from rnn_gradients.run import build

# Lightning 2.6 vs torch 2.13 deprecation notice, unrelated to this project
pytestmark = pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*")


# ----------------------------------------------------------------------------- inside Lightning


class GradProbe(pl.Callback):
    """Records the gradients Lightning hands to the optimizer (pre-clip: this hook runs before
    configure_gradient_clipping) and the ones left after the step (post-clip)."""

    def __init__(self) -> None:
        self.pre: list[torch.Tensor] | None = None
        self.post: list[torch.Tensor] | None = None
        self.stats = None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.pre = [p.grad.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # .grad survives optimizer.step(); Lightning zeroes it only in the next step's closure
        self.post = [p.grad.detach().clone() for p in pl_module.parameters()]
        self.stats = pl_module.clipper.last


def fit_one_step(compose_cfg, overrides: list[str]) -> tuple[GradProbe, object]:
    cfg = compose_cfg(
        ["data.seq_len=8", "model.hidden_size=8", "data.batch_size=4", "data.val_size=8", "optimizer=sgd", *overrides]
    )
    module, data = build(cfg)
    probe = GradProbe()
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[probe],
    )
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 1
    assert probe.pre is not None and probe.post is not None
    return probe, module


def _norm(gs: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in gs))


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_norm_clipping_inside_lightning(compose_cfg, model):
    threshold = 1e-4
    probe, module = fit_one_step(compose_cfg, [f"model={model}", "clipping=norm", f"clipping.threshold={threshold}"])
    pre_norm = _norm(probe.pre)
    assert pre_norm > 10 * threshold  # the test is meaningful only if clipping had to act
    assert _norm(probe.post) == pytest.approx(threshold, rel=1e-5)
    assert probe.stats.postclip_norm.item() == pytest.approx(_norm(probe.post), rel=1e-5)
    assert probe.stats.preclip_norm.item() == pytest.approx(pre_norm, rel=1e-5)
    assert probe.stats.clipped.item() == 1.0
    # the applied gradient is torch's clip_grad_norm_ of the pre-clip gradient
    ref = [nn.Parameter(torch.zeros_like(g)) for g in probe.pre]
    for p, g in zip(ref, probe.pre):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(ref, threshold)
    for p, g in zip(ref, probe.post):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-12)


def test_value_clipping_inside_lightning(compose_cfg):
    threshold = 1e-3
    probe, _ = fit_one_step(compose_cfg, ["model=lstm", "clipping=value", f"clipping.threshold={threshold}"])
    assert max(float(g.abs().max()) for g in probe.pre) > threshold
    for pre, post in zip(probe.pre, probe.post):
        torch.testing.assert_close(post, pre.clamp(-threshold, threshold), rtol=0, atol=0)
    assert probe.stats.clipped.item() == 1.0


def test_no_clipping_inside_lightning(compose_cfg):
    probe, _ = fit_one_step(compose_cfg, ["model=rnn", "clipping=none"])
    for pre, post in zip(probe.pre, probe.post):
        assert torch.equal(pre, post)
    assert probe.stats.clipped.item() == 0.0
    assert probe.stats.preclip_norm.item() == pytest.approx(_norm(probe.pre), rel=1e-5)


def test_clipped_step_moves_parameters_by_clipped_gradient(compose_cfg):
    """With plain SGD (momentum 0) the update is exactly -lr * clipped gradient."""
    threshold, lr = 1e-4, 100.0
    cfg = compose_cfg(
        ["data.seq_len=8", "model.hidden_size=8", "data.batch_size=4", "data.val_size=8", "model=lstm",
         "optimizer=sgd", f"optimizer.lr={lr}", "optimizer.momentum=0.0",
         "clipping=norm", f"clipping.threshold={threshold}"]
    )
    module, data = build(cfg)
    start = [p.detach().clone() for p in module.parameters()]
    probe = GradProbe()
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[probe])
    trainer.fit(module, datamodule=data)
    step = [(p.detach() - s) for p, s in zip(module.parameters(), start)]
    # float32 parameters of size ~0.3 round each update to ~3e-8; the updates here are ~1e-3
    assert _norm(step) == pytest.approx(lr * threshold, rel=1e-3)
    for d, g in zip(step, probe.post):
        torch.testing.assert_close(d, -lr * g, rtol=1e-3, atol=1e-7)


def test_fp16_mixed_precision_clips_unscaled_gradients_and_survives_scaler_overflow():
    """trainer=gpu uses 16-mixed: Lightning must unscale before our clipper measures and clips, and the
    GradScaler's deliberate overflow steps must not count as divergence. CPU fp16 autocast with a real
    GradScaler (scale 65536) exercises the same code path (the LSTM has no CPU fp16 kernel: RNN)."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    from rnn_gradients.guards.divergence_monitor import DivergenceMonitor

    class Probe(pl.Callback):
        def __init__(self) -> None:
            self.rows: list[tuple[float, float, float, float]] = []

        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            self.rows.append((float(torch.nn.utils.get_total_norm(grads)), trainer.precision_plugin.scaler.get_scale(), 0, 0))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            stats = pl_module.clipper.last
            pre, scale, _, _ = self.rows[-1]
            self.rows[-1] = (pre, scale, float(stats.preclip_norm), float(stats.postclip_norm))

    cfg = compose_config(["model=rnn", "model.hidden_size=16", "data.seq_len=20", "data.batch_size=16",
                          "clipping=norm", "clipping.threshold=0.01"])
    module, data = build(cfg)
    probe, divergence = Probe(), DivergenceMonitor()
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[probe, divergence],
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))],
    )
    trainer.fit(module, datamodule=data)
    finite = [r for r in probe.rows if math.isfinite(r[0])]
    assert probe.rows[0][1] == 65536.0 and finite, probe.rows
    for grad_norm, scale, pre, post in finite:
        assert scale >= 1024  # gradients were scaled up by this much during backward ...
        assert pre == pytest.approx(grad_norm, rel=1e-6) and pre < 100  # ... and measured unscaled
        assert post == pytest.approx(0.01, rel=1e-4)  # clipped to the threshold in true units
    assert divergence.diverged_at is None and trainer.global_step == 4
