"""The loss cliff a run of the exploding sweep keeps (contract.LOSS_CLIFF_FILE, written by
rnn_gradients.observatory's loss-cliff callback): the batch loss along the update direction,
L(θ − α·g/‖g‖) on a log grid of α, at the step of the run's largest pre-clip gradient norm
(contract.CLIFF_AT_MAX_NORM), in a run that diverged at the step before the divergence
(contract.CLIFF_BEFORE_DIVERGENCE), and at the first step whose update multiplied its batch loss
(contract.CLIFF_FIRST_UPHILL); with the step the optimizer actually took from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_gradients import contract


@dataclass(frozen=True)
class CliffSlice:
    """One recorded slice: `losses[i]` = L(θ − alphas[i]·g/‖g‖) on the step's batch (NaN where not finite),
    `loss0` = L(θ), `actual_alpha` = ‖Δθ‖ of the step taken, `actual_loss` = the loss on the same batch
    after it (NaN: not finite, or not recorded)."""

    kind: str
    step: int
    grad_norm: float
    alphas: np.ndarray
    losses: np.ndarray
    loss0: float
    actual_alpha: float
    actual_loss: float
    baseline_loss: float

    @property
    def reference_loss(self) -> float:
        """The loss at the smallest α of the grid (1e-4: a step too small to leave θ's neighbourhood)."""
        return float(self.losses[int(np.argmin(self.alphas))])

    @property
    def step_rise(self) -> float:
        """log10(actual_loss / reference_loss): how far up the wall the step the optimizer took went. +inf
        when the loss after the step was not finite (it went over the edge); NaN when nothing was recorded
        or the reference loss is not a positive number."""
        ref, actual = self.reference_loss, self.actual_loss
        if not (math.isfinite(ref) and ref > 0) or not math.isfinite(self.actual_alpha):
            return float("nan")
        if not math.isfinite(actual):
            return float("inf")
        return math.log10(actual / ref) if actual > 0 else float("-inf")

    def normalized(self, loss: np.ndarray | float) -> np.ndarray | float:
        """loss / baseline_loss (1 = the memoryless baseline)."""
        return loss / self.baseline_loss


def _scalar(z: np.lib.npyio.NpzFile, key: str) -> float:
    value = np.asarray(z[key], dtype=float)
    if value.size != 1:
        raise ValueError(f"{key} has shape {value.shape}, expected a scalar")
    return float(value.reshape(()))


@dataclass(frozen=True)
class LossCliff:
    """The slices of one run: `max_norm` (always written), `before_divergence` (diverged runs only) and
    `first_uphill` (runs with a step that multiplied its batch loss; files written before it lack it);
    None where the file lacks the kind."""

    max_norm: CliffSlice | None
    before_divergence: CliffSlice | None
    baseline_loss: float
    first_uphill: CliffSlice | None = None

    def get(self, kind: str) -> CliffSlice | None:
        return {contract.CLIFF_AT_MAX_NORM: self.max_norm, contract.CLIFF_BEFORE_DIVERGENCE: self.before_divergence,
                contract.CLIFF_FIRST_UPHILL: self.first_uphill}[kind]

    @classmethod
    def load(cls, path: Path, baseline_loss: float | None = None) -> LossCliff:
        """Read the file; `baseline_loss` is used when the file has none. A kind with some of its fields
        missing, or alphas and losses that do not match, is a damaged file (ValueError)."""
        slices: dict[str, CliffSlice | None] = {}
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            baseline = _scalar(z, "baseline_loss") if "baseline_loss" in names else baseline_loss
            if baseline is None or not (math.isfinite(baseline) and baseline > 0):
                raise ValueError(f"baseline_loss is {baseline}")
            for kind in contract.CLIFF_KINDS:
                keys = [f"{kind}_{f}" for f in contract.CLIFF_FIELDS]
                present = [k in names for k in keys]
                if not any(present):
                    slices[kind] = None
                    continue
                if not all(present):
                    raise ValueError(f"{kind}: missing {', '.join(k for k, p in zip(keys, present) if not p)}")
                fields = dict(zip(contract.CLIFF_FIELDS, keys))
                alphas = np.asarray(z[fields["alphas"]], dtype=float).reshape(-1)
                losses = np.asarray(z[fields["losses"]], dtype=float).reshape(-1)
                if alphas.size == 0 or alphas.shape != losses.shape or not np.all(alphas > 0):
                    raise ValueError(f"{kind}: alphas {alphas.shape} and losses {losses.shape} do not match "
                                     "(or an alpha is not positive)")
                losses = np.where(np.isfinite(losses), losses, np.nan)
                slices[kind] = CliffSlice(
                    kind=kind, step=int(_scalar(z, fields["step"])), grad_norm=_scalar(z, fields["grad_norm"]),
                    alphas=alphas, losses=losses, loss0=_scalar(z, fields["loss0"]),
                    actual_alpha=_scalar(z, fields["actual_alpha"]), actual_loss=_scalar(z, fields["actual_loss"]),
                    baseline_loss=float(baseline))
        return cls(max_norm=slices[contract.CLIFF_AT_MAX_NORM],
                   before_divergence=slices[contract.CLIFF_BEFORE_DIVERGENCE], baseline_loss=float(baseline),
                   first_uphill=slices[contract.CLIFF_FIRST_UPHILL])


def load_loss_cliff(run_dir: Path, kind: str = contract.CLIFF_AT_MAX_NORM,
                    baseline_loss: float | None = None) -> CliffSlice | None:
    """One kind of a run folder's loss cliff; None when the file is absent or lacks the kind."""
    path = Path(run_dir) / contract.LOSS_CLIFF_FILE
    if not path.is_file():
        return None
    return LossCliff.load(path, baseline_loss).get(kind)
