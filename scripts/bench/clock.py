"""What every timed sample shares: the two clocks, device syncs, a quiet Lightning, the floating-point
mode run.train applies, and how many steps fit a time budget."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator

import torch
from omegaconf import DictConfig


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Lightning's progress bar and banners go to /dev/null, its info logs and known warnings are off."""
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
    levels = {n: logging.getLogger(n).level for n in names}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in names:
            logging.getLogger(n).setLevel(logging.WARNING)
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now() -> tuple[float, float]:
    """(wall seconds, CPU seconds of the calling thread). Wall time is what a user waits and the primary
    number; the thread's CPU time (which leaves out background threads such as TensorBoard's writer) is a
    cross-check that a time slice taken by another process barely touches."""
    return time.perf_counter(), time.thread_time()


def apply_fp_mode(cfg: DictConfig) -> None:
    """What run.train does to floating point: flush denormals to zero when cfg.flush_denormal (the
    setting lives in the CPU's per-thread control register, so every thread that computes calls this)."""
    torch.set_flush_denormal(bool(cfg.get("flush_denormal", False)))


@contextlib.contextmanager
def flush_denormal(enabled: bool) -> Iterator[None]:
    """Flush-to-zero on (or off) in the calling thread for the block, off again after it."""
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def window_for(est_step_s: float, budget_s: float, lo: int, hi: int) -> int:
    """Timed steps that fill budget_s at est_step_s per step, within [lo, hi]."""
    n = int(budget_s / max(est_step_s, 1e-6))
    if n >= 10:
        n = n // 10 * 10  # whole periods of trainer.log_every_n_steps (10)
    return max(lo, min(hi, n))
