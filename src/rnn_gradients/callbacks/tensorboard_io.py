"""Small writers on top of TensorBoard's SummaryWriter, shared by the observatory callbacks.

Histograms are binned on the device (torch.histc) and written with add_histogram_raw: 64 fixed bins
instead of SummaryWriter's 1,549 default edges keeps event files small and avoids copying whole
tensors to the host.
"""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

log = logging.getLogger(__name__)


def summary_writer(trainer: pl.Trainer) -> SummaryWriter | None:
    """The TensorBoard writer of the run's first TensorBoard logger, if any."""
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if isinstance(experiment, SummaryWriter):
            return experiment
    return None


def add_histogram(writer: SummaryWriter, tag: str, values: Tensor, step: int, bins: int = 64) -> None:
    """A histogram of `values` with `bins` equal-width bins between their min and max."""
    values = values.detach().flatten().float()
    finite = values[torch.isfinite(values)]
    if finite.numel() == 0:
        return
    lo, hi = finite.min(), finite.max()
    if hi <= lo:  # all equal: one bucket
        hi = lo + 1e-12
    counts = torch.histc(finite, bins=bins, min=float(lo), max=float(hi))
    edges = torch.linspace(float(lo), float(hi), bins + 1, device=finite.device)[1:]
    stats = torch.stack([lo, hi, finite.sum(), (finite * finite).sum()]).tolist()
    writer.add_histogram_raw(
        tag,
        min=stats[0],
        max=stats[1],
        num=finite.numel(),
        sum=stats[2],
        sum_squares=stats[3],
        bucket_limits=edges.tolist(),
        bucket_counts=counts.tolist(),
        global_step=step,
    )


def add_curve_as_histogram(writer: SummaryWriter, tag: str, heights: Tensor, step: int) -> None:
    """Write a curve y(t), t = 0..L-1, as a 'histogram' whose bucket t has height y(t).

    TensorBoard's histogram dashboard then draws the curve against t, one slice per training step
    stacked in depth: the gradient-through-time picture, live. Heights must be >= 0.
    """
    heights = heights.detach().float().cpu().clamp_min(0)
    t = torch.arange(heights.numel(), dtype=torch.float32)
    total = float(heights.sum())
    writer.add_histogram_raw(
        tag,
        min=0.0,
        max=float(heights.numel() - 1),
        num=max(total, 1e-12),
        sum=float((t * heights).sum()),
        sum_squares=float((t * t * heights).sum()),
        bucket_limits=(t + 0.5).tolist(),
        bucket_counts=heights.tolist(),
        global_step=step,
    )
