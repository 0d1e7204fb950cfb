"""Stop a run cleanly when training has blown up, and remember why (for summary.json)."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl

from rnn_gradients.callback_interfaces import DivergenceVerdict, SummaryFields
from rnn_gradients.schema import check

log = logging.getLogger(__name__)


class DivergenceMonitor(DivergenceVerdict, SummaryFields, pl.Callback):
    """Marks the run diverged on a non-finite loss or gradient, or a loss above
    `loss_multiple` × the task baseline after `warmup_steps`; then asks the trainer to stop.

    Stopping (not raising) lets a multirun go on: the job exits 0 and its summary says what happened
    (summary_fields). Other callbacks ask `verdict` (callback_interfaces.DivergenceVerdict).
    """

    def __init__(self, loss_multiple: float = 100.0, warmup_steps: int = 100) -> None:
        check("callbacks.divergence", loss_multiple=loss_multiple, warmup_steps=warmup_steps)  # the schema's rules
        self.loss_multiple, self.warmup_steps = loss_multiple, warmup_steps
        self.diverged_at: int | None = None
        self.reason: str | None = None
        self._judged_step: int | None = None  # the step `verdict` last judged

    def _mark(self, trainer: pl.Trainer, reason: str) -> None:
        if self.diverged_at is None:
            self.diverged_at, self.reason = trainer.global_step, reason
            log.warning("Diverged at step %d: %s. Stopping this run.", trainer.global_step, reason)
        trainer.should_stop = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.verdict(trainer, pl_module, outputs)

    def verdict(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any) -> int | None:
        if self._judged_step != trainer.global_step:
            self._judged_step = trainer.global_step
            self._judge(trainer, pl_module, outputs)
        return self.diverged_at

    def summary_fields(self) -> dict[str, Any]:
        diverged = self.diverged_at is not None
        return {"diverged": diverged, "diverged_at_step": self.diverged_at, "divergence_reason": self.reason if diverged else None}

    def _judge(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        stats = getattr(pl_module.clipper, "last", None)
        value, baseline = loss.item(), pl_module.task.baseline_loss  # .item(): the cheapest read, one sync
        if not math.isfinite(value):
            self._mark(trainer, f"non-finite loss ({value})")
        elif trainer.global_step > self.warmup_steps and value > self.loss_multiple * baseline:
            self._mark(trainer, f"loss {value:.4g} > {self.loss_multiple:g} x baseline {baseline:.4g}")
        elif stats is not None and not self._scaler_skips(trainer) and not math.isfinite(stats.preclip_norm.item()):
            self._mark(trainer, "non-finite gradient norm")

    @staticmethod
    def _scaler_skips(trainer: pl.Trainer) -> bool:
        """Under fp16 mixed precision a GradScaler overflows on purpose while it searches its scale, and
        skips those steps itself: a non-finite gradient there is routine, not divergence."""
        return getattr(getattr(trainer, "precision_plugin", None), "scaler", None) is not None

    def state_dict(self) -> dict[str, Any]:
        return {"diverged_at": self.diverged_at, "reason": self.reason}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.diverged_at, self.reason = state_dict["diverged_at"], state_dict["reason"]
