"""Checkpoints that survive kills: periodic, at the end, and on SIGINT/SIGTERM; always written atomically."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch

from rnn_gradients.cluster import submitit_preempt_signal
from rnn_gradients.contract import LAST_CHECKPOINT

log = logging.getLogger(__name__)



def save_last_checkpoint(trainer: pl.Trainer, dirpath: Path) -> Path:
    """Write <dirpath>/last.ckpt via a temporary file and a rename: a kill mid-write keeps the old one."""
    dirpath.mkdir(parents=True, exist_ok=True)
    final, tmp = dirpath / LAST_CHECKPOINT, dirpath / f".{LAST_CHECKPOINT}.tmp"
    trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizer, loops, callbacks, data
    os.replace(tmp, final)
    return final


class PeriodicCheckpoint(pl.Callback):
    """last.ckpt every `every_n_steps` optimizer steps (0 = never) and after the final step.

    Saving inside on_train_batch_end (never after fit) matters: Lightning's resume logic assumes it, and
    a checkpoint taken elsewhere resumes with the logging step off by one. Place it after callbacks that
    may stop training (divergence), so a stopped run's last step is saved too.

    Not Lightning's ModelCheckpoint: its "atomic" save (2.6: an fsspec transaction) writes to the system
    temp dir and moves the file, a copy into last.ckpt in place where /tmp is another filesystem, so a kill
    mid-copy truncates it (tests/test_reliability.py); and it saves a stopped run only in on_train_end.
    """

    def __init__(self, dirpath: Path, every_n_steps: int) -> None:
        self.dirpath, self.every_n_steps = Path(dirpath), every_n_steps

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        periodic = self.every_n_steps and step % self.every_n_steps == 0
        final = trainer.max_steps is not None and 0 < trainer.max_steps <= step
        if periodic or final or trainer.should_stop:
            save_last_checkpoint(trainer, self.dirpath)


class GracefulInterrupt(pl.Callback):
    """On the first SIGINT or SIGTERM, or in a submitit SLURM job its preemption / time-limit signal
    (USR2): finish the current step, save last.ckpt, stop training. A second signal interrupts at once.
    `received` tells run.py to mark the run interrupted; after a preemption signal run.py then calls
    `hand_over_to_submitit`, which requeues the job: submitit's own handler would exit mid-step, losing
    the steps since the last periodic checkpoint.

    Not Lightning's own SIGTERM handling or OnExceptionCheckpoint: Lightning stops at once on SIGTERM
    without a checkpoint, and OnExceptionCheckpoint saves only after an exception, mid-step state included;
    neither handles SIGINT gracefully or the preemption signal submitit uses."""

    def __init__(self, dirpath: Path) -> None:
        self.dirpath = Path(dirpath)
        self.received: int | None = None
        self.stopped_at: int | None = None
        self.preempt_signal = submitit_preempt_signal()
        self.signals = (signal.SIGINT, signal.SIGTERM, *([self.preempt_signal] if self.preempt_signal else []))
        self._previous: dict[int, Any] = {}
        self._submitit_handler: Any = None

    @property
    def preempted(self) -> bool:
        return self.received is not None and self.received == self.preempt_signal

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # second signal: give up gracefulness
            raise KeyboardInterrupt
        self.received = signum
        log.warning("Received %s: saving a checkpoint after this step, then stopping.", signal.Signals(signum).name)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handler)
        if self.preempt_signal is not None:
            self._submitit_handler = self._previous[self.preempt_signal]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.received is not None and self.stopped_at is None:
            path = save_last_checkpoint(trainer, self.dirpath)
            self.stopped_at = trainer.global_step
            trainer.should_stop = True
            log.warning("Checkpoint at step %d saved to %s", trainer.global_step, path)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def hand_over_to_submitit(self) -> None:
        """Run submitit's preemption handler now that the checkpoint is saved: it pickles the job for a
        resubmission, requeues it (`scontrol requeue`) and exits the process, or raises when it will not
        requeue (a time limit reached more than max_num_timeout times)."""
        if callable(self._submitit_handler) and self.received is not None:
            self._submitit_handler(self.received, None)
