"""The start-up row's Lightning probe: wall-clock marks of a real run's phases up to its first step.
Imports only Lightning and the package's JSON writer, both loaded by the run before it builds callbacks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from rnn_gradients.io_utils import write_json_atomic


class FirstStepProbe(pl.Callback):
    """Added to a real `python -m rnn_gradients.train` run through Hydra
    (`+callbacks.bench_probe._target_=bench.probe_first_step.FirstStepProbe +callbacks.bench_probe.path=...`,
    scripts/ on PYTHONPATH): records wall-clock times of the start-up phases and writes them as JSON after
    the first step."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.marks: dict[str, float] = {"callbacks_built": time.time()}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.marks.setdefault("setup", time.time())

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.setdefault("fit_start", time.time())

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.setdefault("train_start", time.time())

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self.marks.setdefault("first_step", time.time())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if "first_step_end" not in self.marks:
            self.marks["first_step_end"] = time.time()
            write_json_atomic(self.path, self.marks)
