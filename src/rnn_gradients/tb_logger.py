"""Lightning's TensorBoard logger with the step axis aligned to trainer.global_step."""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import TensorBoardLogger


class StepAlignedTensorBoardLogger(TensorBoardLogger):
    """Lightning logs a step's metrics under the number of steps done *before* it (the first step is 0,
    validation after 250 steps is 249); the observatory logs under the number done *after* it, like
    trainer.global_step (0 = initialization). Shifting Lightning's metrics by one puts every tag of a
    step at the same x in TensorBoard and in the figures. `shift` is set to 0 for an evaluation run
    after training, which Lightning already logs at the final global step."""

    shift = 1

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, None if step is None else step + self.shift)
