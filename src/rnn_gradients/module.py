"""One LightningModule for every model × task × clipping combination."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from rnn_gradients.clipping import GradientClipper
from rnn_gradients.contract import STAGE_TAGS
from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.tasks import Task

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


class SequenceModule(pl.LightningModule):
    """Trains `network` on `task`; every loss is also logged divided by the task's memoryless baseline."""

    def __init__(
        self,
        network: RecurrentNetwork,
        task: Task,
        optimizer: OptimizerFactory,
        clipper: GradientClipper,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        self.network, self.task, self.make_optimizer, self.clipper = network, task, optimizer, clipper
        self.make_scheduler = scheduler
        self.last_val_step = -1
        self._unlogged: tuple[Tensor, Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x, last_only=not self.task.per_step_output)

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str, log_metrics: bool = True) -> Tensor:
        x, y = batch
        predictions = self(x)
        loss = self.task.loss(predictions, y)
        if log_metrics:
            self._log_metrics(stage, loss, predictions, y)
        elif stage == "train":  # kept (references only) in case training stops at the end of this step
            self._unlogged = (loss.detach(), predictions.detach(), y)
        return loss

    def _log_metrics(self, stage: str, loss: Tensor, predictions: Tensor, y: Tensor) -> None:
        on_step = stage == "train"
        loss_tag, normalized_tag, accuracy_tag = STAGE_TAGS[stage]
        self.log(loss_tag, loss, on_step=on_step, on_epoch=not on_step, prog_bar=True)
        self.log(normalized_tag, loss / self.task.baseline_loss, on_step=on_step, on_epoch=not on_step)
        self.log(accuracy_tag, self.task.metric(predictions, y), on_step=on_step, on_epoch=not on_step)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        self._unlogged = None
        return self._shared_step(batch, "train", log_metrics=self._logs_this_step())

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """A callback stopped training after this step (a signal, divergence), which training_step could not
        know: log the step's own metrics now. Lightning writes train/* when training stops, and would
        otherwise write the last logged step's values again under this step."""
        if self.trainer.should_stop and self._unlogged is not None:
            self._log_metrics("train", *self._unlogged)
            self._unlogged = None

    def _logs_this_step(self) -> bool:
        """Whether Lightning will write this step's train/* metrics (every `log_every_n_steps`, and when
        training stops). On other steps `self.log` would be thrown away, yet it costs ~0.25 ms a call,
        ~7% of a short RNN step (docs/benchmarks.md), so it is skipped there. The last step is always
        logged so summary.json's train_loss is the final one."""
        trainer = self._trainer
        if trainer is None:
            return True
        step = self.global_step + 1  # the number this step will have once it is done
        return step % trainer.log_every_n_steps == 0 or step == trainer.max_steps or trainer.should_stop

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.last_val_step = self.global_step

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(self.parameters())
        if self.make_scheduler is None:
            return optimizer
        scheduler = {"scheduler": self.make_scheduler(optimizer), "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Lightning calls this after on_before_optimizer_step and, under AMP, after unscaling.
        # Our clipper replaces Trainer(gradient_clip_val=...) so its statistics are available to callbacks.
        self.clipper(self.parameters())
