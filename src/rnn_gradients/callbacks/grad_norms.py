"""Gradient norms every step: total before and after clipping, per tensor, and update/weight ratios."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch.optim import Optimizer

from rnn_gradients.callbacks.tensorboard_io import summary_writer


class GradNormLogger(pl.Callback):
    """Logs, every `every_n_steps` optimizer steps:
    grad_norm/total_preclip, grad_norm/total_postclip (measured after clipping), grad_norm/clipped (0/1,
    so TensorBoard's smoothing shows the clipped fraction), grad_norm/<param> (pre-clip), and
    update_ratio/<param> = ||W_after - W_before|| / ||W_before||.

    Everything is computed with foreach kernels on the device and synced to the host once per logged step.
    """

    def __init__(self, every_n_steps: int = 1, per_parameter: bool = True, update_ratio: bool = True) -> None:
        if every_n_steps <= 0:
            raise ValueError(f"callbacks.grad_norms.every_n_steps must be > 0, got {every_n_steps}")
        self.every_n_steps, self.per_parameter, self.update_ratio = every_n_steps, per_parameter, update_ratio
        self._param_norms: torch.Tensor | None = None
        self._weights_before: list[torch.Tensor] | None = None
        self._names: list[str] = []

    def _due(self, trainer: pl.Trainer) -> bool:
        # global_step counts finished steps; the step being taken now will be number global_step + 1.
        return (trainer.global_step + 1) % self.every_n_steps == 0

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer) -> None:
        self._param_norms = None
        if not self._due(trainer):
            return
        named = [(n, p) for n, p in pl_module.network.named_parameters() if p.grad is not None]
        self._names = [n for n, _ in named]
        if self.per_parameter:  # Lightning calls this hook before clipping: these are pre-clip norms
            self._param_norms = torch.stack(torch._foreach_norm([p.grad for _, p in named]))
        if self.update_ratio:
            self._weights_before = [p.detach().clone() for _, p in named]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        stats = getattr(pl_module.clipper, "last", None)
        writer = summary_writer(trainer)
        if writer is None or stats is None or trainer.global_step % self.every_n_steps != 0:
            return
        parts = [torch.stack([stats.preclip_norm, stats.postclip_norm, stats.clipped.to(stats.preclip_norm)])]
        tags = ["grad_norm/total_preclip", "grad_norm/total_postclip", "grad_norm/clipped"]
        if self._param_norms is not None:
            parts.append(self._param_norms)
            tags += [f"grad_norm/{n}" for n in self._names]
        if self._weights_before is not None:
            params = dict(pl_module.network.named_parameters())
            after = [params[n].detach() for n in self._names]
            delta = torch._foreach_sub(after, self._weights_before)
            before_norms = torch.stack(torch._foreach_norm(self._weights_before))
            parts.append(torch.stack(torch._foreach_norm(delta)) / before_norms.clamp_min(1e-12))
            tags += [f"update_ratio/{n}" for n in self._names]
            self._weights_before = None
        values = torch.cat([p.float().flatten() for p in parts]).tolist()  # the one host sync
        step = trainer.global_step
        for tag, value in zip(tags, values):
            writer.add_scalar(tag, value, step)
