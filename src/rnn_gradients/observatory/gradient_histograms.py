"""Histograms of every parameter's gradient (pre-clip), every N steps, flushed so they show live."""

from __future__ import annotations

import lightning.pytorch as pl
from torch.optim import Optimizer

from rnn_gradients import contract
from rnn_gradients.observatory.tensorboard_io import add_histogram, summary_writer
from rnn_gradients.schema import check


class GradHistogramLogger(pl.Callback):
    """grad_hist/<param>: the distribution of gradient values of each tensor (before clipping)."""

    def __init__(self, every_n_steps: int = 100, bins: int = 64) -> None:
        check("callbacks.grad_histograms", every_n_steps=every_n_steps, bins=bins)
        self.every_n_steps, self.bins = every_n_steps, bins

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer) -> None:
        step = trainer.global_step + 1  # the step being taken (matches the scalars logged after it)
        writer = summary_writer(trainer)
        if writer is None or (step % self.every_n_steps != 0 and step != 1):
            return
        for name, p in pl_module.network.named_parameters():
            if p.grad is not None:
                add_histogram(writer, contract.grad_hist_tag(name), p.grad, step, self.bins)
        writer.flush()
