"""The cliff of Pascanu et al. (2013), recorded from real runs: the training loss on the current batch
along the update direction, L(θ − α·g/‖g‖) for α on a log grid, plus the step the optimizer actually took.

Recorded at the step of the run's largest pre-clip gradient norm (a new record replaces the old one, so a
run keeps the slice of its steepest step whether or not a spike ever happened), at the step before a
divergence (the step whose update produced the non-finite loss), and at the first step whose update
multiplied the loss on its own batch by at least `uphill_factor`: the first jump over the wall, recorded
because a run that diverges takes its largest norm and its last step after it has blown up, and its first
uphill step is the one that shows the wall of Pascanu et al. (the loss falls along −g, then rises; a step
∝ ‖g‖ lands on it). What the measured runs show: README, the loss_cliff row of the results. Written to
loss_cliff.npz (contract.LOSS_CLIFF_FILE) at the end of training and kept in checkpoints so a resumed run
keeps it.
Meant for the exploding sweep: each record costs one forward pass per α on one batch, and the search for the
first uphill step one forward pass per step until it is found.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.func import functional_call
from torch.optim import Optimizer

from rnn_gradients import contract
from rnn_gradients.callback_interfaces import DivergenceVerdict, implementing
from rnn_gradients.io_utils import write_bytes_atomic
from rnn_gradients.schema import check, check_loss_cliff


class LossCliffRecorder(pl.Callback):
    """Keeps a copy of (θ, g, batch) at each new maximum of the pre-clip gradient norm (cheap), and
    evaluates the slice once: at the end of training, or when a checkpoint is saved."""

    def __init__(self, alpha_min: float = 1e-4, alpha_max: float = 10.0, num_alphas: int = 21,
                 output_dir: str | Path = ".", uphill_factor: float = 2.0) -> None:
        check_loss_cliff(alpha_min, alpha_max)
        check("callbacks.loss_cliff", num_alphas=num_alphas, uphill_factor=uphill_factor)
        self.uphill_factor = float(uphill_factor)
        self.alphas = np.logspace(math.log10(alpha_min), math.log10(alpha_max), num_alphas)
        self.output_dir = Path(output_dir)
        self.records: dict[str, dict[str, Any]] = {}
        self.best_norm = -math.inf
        self._module: pl.LightningModule | None = None
        self._batch: Any = None
        self._best: dict[str, Any] | None = None  # the snapshot of the largest norm so far, not yet evaluated
        self._last: dict[str, Any] | None = None  # this step's snapshot, kept one step for a divergence
        self._previous: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._module = pl_module

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch = batch

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer) -> None:
        named = [(n, p) for n, p in pl_module.named_parameters() if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for _, p in named])))
        self._previous = self._last
        # step: the number this step has once done, as every tag and summary.json count steps
        self._last = {"step": trainer.global_step + 1, "norm": norm, "batch": self._batch,
                      "theta": {n: p.detach().clone() for n, p in named}, "grad": {n: p.grad.detach().clone() for n, p in named}}
        if math.isfinite(norm) and norm > max(self.best_norm, 0.0):
            self.best_norm, self._best = norm, self._last

    @torch.no_grad()
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._last is None:
            return
        if self._best is self._last:  # where this step's update landed: the other end of "the step it took"
            self._last["after"] = {n: p.detach().clone() for n, p in pl_module.named_parameters() if n in self._last["theta"]}
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if contract.CLIFF_FIRST_UPHILL not in self.records and loss is not None and math.isfinite(float(loss)):
            self._check_uphill(pl_module, float(loss))
        judges = implementing(trainer, DivergenceVerdict)  # the divergence monitor: judged once, by whichever Lightning calls first
        diverged = any(judge.verdict(trainer, pl_module, outputs) == trainer.global_step for judge in judges)
        diverged = diverged or (loss is not None and not math.isfinite(float(loss))) or not math.isfinite(self._last["norm"])
        if diverged and self._previous is not None and contract.CLIFF_BEFORE_DIVERGENCE not in self.records:
            # the previous step's update went over the edge: θ of this step is where it landed
            self.records[contract.CLIFF_BEFORE_DIVERGENCE] = self._evaluate({**self._previous, "after": self._last["theta"]})

    def _check_uphill(self, pl_module: pl.LightningModule, loss_before: float) -> None:
        """Record this step if its update raised the loss on its batch by uphill_factor (or to a non-finite value)."""
        after = {n: p.detach() for n, p in pl_module.named_parameters() if n in self._last["theta"]}
        loss_after = self._loss(pl_module, after, self._last["batch"])
        if not (loss_after < self.uphill_factor * loss_before):  # NaN (not finite) counts as uphill
            after = {n: p.clone() for n, p in after.items()}
            self.records[contract.CLIFF_FIRST_UPHILL] = self._evaluate({**self._last, "after": after})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finalize()
        if self.records:
            self._save(self.output_dir / contract.LOSS_CLIFF_FILE, pl_module.task.baseline_loss)

    def _finalize(self) -> None:
        if self._best is not None and self._module is not None and "after" in self._best:
            self.records[contract.CLIFF_AT_MAX_NORM] = self._evaluate(self._best)
            self._best = None

    @staticmethod
    def _loss(pl_module: pl.LightningModule, params: dict[str, torch.Tensor], batch: Any) -> float:
        x, y = batch
        value = float(pl_module.task.loss(functional_call(pl_module, params, (x,)), y))
        return value if math.isfinite(value) else float("nan")

    @torch.no_grad()
    def _evaluate(self, snap: dict[str, Any]) -> dict[str, Any]:
        """The slice L(θ − α·g/‖g‖) over the α grid, and the step the optimizer took (θ → snap["after"])."""
        module, theta, grad, norm, batch = self._module, snap["theta"], snap["grad"], snap["norm"], snap["batch"]
        losses = [self._loss(module, {n: theta[n] - (a / norm) * grad[n] for n in theta}, batch) for a in self.alphas]
        after = snap["after"]
        delta = torch.stack([torch.linalg.vector_norm(after[n] - theta[n]) for n in theta])
        return {"step": snap["step"], "grad_norm": norm, "alphas": self.alphas.tolist(), "losses": losses,
                "loss0": self._loss(module, theta, batch), "actual_alpha": float(torch.linalg.vector_norm(delta)),
                "actual_loss": self._loss(module, after, batch)}

    def _save(self, path: Path, baseline_loss: float) -> None:
        arrays = {"baseline_loss": np.asarray(baseline_loss)}
        for kind, record in self.records.items():
            for field in contract.CLIFF_FIELDS:
                arrays[f"{kind}_{field}"] = np.asarray(record[field], dtype=np.int64 if field == "step" else np.float64)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_bytes_atomic(path, buffer.getvalue())

    @torch.no_grad()
    def state_dict(self) -> dict[str, Any]:
        self._finalize()  # a checkpoint carries the slice of the largest norm so far
        return {"records": self.records, "best_norm": self.best_norm}  # plain floats and lists: weights_only loads them

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records, self.best_norm = dict(state_dict["records"]), float(state_dict["best_norm"])
