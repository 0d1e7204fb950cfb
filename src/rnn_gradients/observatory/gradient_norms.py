"""Gradient norms every step: total before and after clipping, per tensor, and update/weight ratios."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim import Optimizer

from rnn_gradients import contract
from rnn_gradients.observatory.tensorboard_io import add_scalars, summary_writer
from rnn_gradients.schema import check

TOTAL_TAGS = [contract.PRECLIP_NORM, contract.POSTCLIP_NORM, contract.CLIPPED]


class GradNormLogger(pl.Callback):
    """Logs, every `every_n_steps` optimizer steps:
    grad_norm/total_preclip, grad_norm/total_postclip (measured after clipping), grad_norm/clipped (0/1,
    so TensorBoard's smoothing shows the clipped fraction), grad_norm/<param> (pre-clip), and
    update_ratio/<param> = ||W_after - W_before|| / ||W_before||.

    Cheap enough for every step: the per-tensor norms are the ones the clipper computes anyway
    (rnn_gradients.clipping), weights are snapshotted into buffers allocated once (a fresh clone per step
    made the allocator re-fault the activation buffers), and each logged step costs one host sync and
    one TensorBoard event.
    """

    def __init__(self, every_n_steps: int = 1, per_parameter: bool = True, update_ratio: bool = True) -> None:
        check("callbacks.grad_norms", every_n_steps=every_n_steps, per_parameter=per_parameter, update_ratio=update_ratio)
        self.every_n_steps, self.per_parameter, self.update_ratio = every_n_steps, per_parameter, update_ratio
        self._names: dict[int, str] = {}  # id(parameter) -> name
        self._snapshot_of: list[nn.Parameter] = []
        self._snapshot: list[torch.Tensor] = []  # weights before the optimizer step, buffers reused every step
        self._snapshot_taken = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._names = {id(p): n for n, p in pl_module.network.named_parameters()}

    def _log_threshold(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """grad_norm/threshold at the first and the last step: the line the pre-clip norm is held to."""
        writer, clipper = summary_writer(trainer), getattr(pl_module, "clipper", None)
        if writer is not None and clipper is not None and clipper.mode != "none":
            writer.add_scalar(contract.CLIP_THRESHOLD, float(clipper.threshold), trainer.global_step)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_threshold(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_threshold(trainer, pl_module)

    def _due(self, trainer: pl.Trainer) -> bool:
        # global_step counts finished steps; the step being taken now will be number global_step + 1.
        return (trainer.global_step + 1) % self.every_n_steps == 0

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer) -> None:
        self._snapshot_taken = False
        if not (self.update_ratio and self._due(trainer)):
            return
        params = [p for p in pl_module.network.parameters() if p.grad is not None]
        if len(params) != len(self._snapshot_of) or any(a is not b for a, b in zip(params, self._snapshot_of)):
            self._snapshot_of, self._snapshot = params, [torch.empty_like(p) for p in params]
        with torch.no_grad():
            torch._foreach_copy_(self._snapshot, params)
        self._snapshot_taken = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        stats = getattr(pl_module.clipper, "last", None)
        writer = summary_writer(trainer)
        if writer is None or stats is None or trainer.global_step % self.every_n_steps != 0:
            return
        tags = list(TOTAL_TAGS)
        parts = [torch.stack([stats.preclip_norm, stats.postclip_norm, stats.clipped.to(stats.preclip_norm)])]
        if self.per_parameter:  # measured by the clipper before it clipped
            tags += [contract.GRAD_NORM + f"{self._names.get(id(p), f'param{i}')}" for i, p in enumerate(stats.params)]
            parts.append(stats.tensor_norms)
        if self._snapshot_taken:
            with torch.no_grad():
                before_norms = torch.stack(torch._foreach_norm(self._snapshot))
                torch._foreach_sub_(self._snapshot, self._snapshot_of)  # in place: W_before - W_after
                parts.append(torch.stack(torch._foreach_norm(self._snapshot)) / before_norms.clamp_min(1e-12))
            tags += [contract.UPDATE_RATIO + f"{self._names.get(id(p), f'param{i}')}" for i, p in enumerate(self._snapshot_of)]
            self._snapshot_taken = False
        values = torch.cat([p.float().flatten() for p in parts]).tolist()  # the one host sync
        add_scalars(writer, tags, values, trainer.global_step)
