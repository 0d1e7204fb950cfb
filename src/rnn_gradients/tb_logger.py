"""Lightning's TensorBoard logger with the step axis aligned to trainer.global_step, writing one event
file per run (per attempt, when a run is resumed)."""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import TensorBoardLogger


class StepAlignedTensorBoardLogger(TensorBoardLogger):
    """Lightning logs a step's metrics under the number of steps done *before* it (the first step is 0,
    validation after 250 steps is 249); the observatory logs under the number done *after* it, like
    trainer.global_step (0 = initialization). Shifting Lightning's metrics by one puts every tag of a
    step at the same x in TensorBoard and in the figures. Once fit has ended (`finalize`) the shift is 0:
    Lightning logs an evaluation after fit (run.py's closing validation) at the final global step itself,
    as its step counter (`_batches_that_stepped`) is raised after each step's logging and validation."""

    shift = 1

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, None if step is None else step + self.shift)

    def finalize(self, status: str) -> None:
        """Flush and save hparams.yaml, but keep the event file open: after fit the run still writes its
        closing validation and its HParams outcome, and a closed SummaryWriter would start a second file
        for them. run.py calls `close` when the run is done. What is logged from now on is at the right step."""
        if self._experiment is not None:
            self._experiment.flush()
        self.save()
        self.shift = 0

    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()
