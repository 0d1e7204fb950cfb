"""How the job (run.py) and its callbacks, and callbacks among themselves, exchange what they found: by
the interfaces declared here, never by an attribute name looked up with getattr or by a callback's place
in the list.

- `SummaryFields`: a callback whose findings belong in summary.json (the divergence monitor's
  diverged / diverged_at_step / divergence_reason). run.summarize merges the fields of every one.
- `HParamsMetrics`: a callback whose findings are HParams outcome metrics (the gradient-flow logger's
  log10 ratios). run.py hands them to tb_overview.write_end.
- `DivergenceVerdict`: a callback that judges whether the run diverged at the current step. A callback
  that needs the verdict in the same step (the loss-cliff recorder) asks for it; the verdict is judged
  once per step by whichever of the two Lightning calls first, so the answer does not depend on order.

`implementing` is the one lookup of callbacks by type (Lightning's own `trainer.checkpoint_callback`
and friends are the same scan of `trainer.callbacks`, for its built-in kinds).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, TypeVar

import lightning.pytorch as pl

Interface = TypeVar("Interface")


class SummaryFields(ABC):
    """Contributes keys of summary.json (contract.OUTCOME_KEYS) at the end of the run."""

    @abstractmethod
    def summary_fields(self) -> dict[str, Any]:
        """The summary.json keys this callback owns, with their values at the end of the run."""


class HParamsMetrics(ABC):
    """Contributes HParams outcome metrics (contract.HPARAM_METRICS tags) at the end of the run."""

    @abstractmethod
    def hparams_metrics(self) -> Mapping[str, float]:
        """{HParams metric tag: value} at the end of the run; a tag left out is written as NaN."""


class DivergenceVerdict(ABC):
    """Judges, from a step's training outputs, whether the run diverged."""

    @abstractmethod
    def verdict(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any) -> int | None:
        """The step the run diverged at (None: it has not), judged on this step's `outputs` at most once
        a step: a callback asking in its own on_train_batch_end gets the same answer whether Lightning
        calls it before or after the judge."""


def implementing(trainer: pl.Trainer, interface: type[Interface]) -> list[Interface]:
    """The trainer's callbacks that implement `interface`, in the trainer's order."""
    return [callback for callback in trainer.callbacks if isinstance(callback, interface)]
