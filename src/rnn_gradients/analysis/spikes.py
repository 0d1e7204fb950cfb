"""The gradient-norm spike rule.

A *spike* is a step whose pre-clip norm (contract.PRECLIP_NORM) exceeds SPIKE_FACTOR (10) × the running
median of the previous SPIKE_WINDOW (50) logged steps. Near the start fewer than 50 previous steps exist:
the median of those available is used once there are at least SPIKE_MIN_HISTORY (10); earlier steps are
never spikes. The median ignores NaN; a non-finite (inf) norm after enough history is a spike.
"Spike" means this only; a training loss far above the baseline is a loss excursion (divergence_rules).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPIKE_FACTOR = 10.0
SPIKE_WINDOW = 50
SPIKE_MIN_HISTORY = 10


def detect_spikes(values: Sequence[float] | np.ndarray, factor: float = SPIKE_FACTOR, window: int = SPIKE_WINDOW,
                  min_history: int = SPIKE_MIN_HISTORY) -> np.ndarray:
    """Boolean mask: values[i] > factor × median(values[i-window:i]) (see the module docstring)."""
    v = np.asarray(values, dtype=float)
    mask = np.zeros(v.shape, dtype=bool)
    if v.size <= min_history:
        return mask
    medians = np.full(v.shape, np.nan)
    # Full windows, vectorized: window k covers v[k : k + window] and judges v[k + window].
    if v.size > window:
        windows = np.lib.stride_tricks.sliding_window_view(v[:-1], window)
        with np.errstate(all="ignore"):
            medians[window:] = _nanmedian_rows(windows)
    for i in range(min_history, min(window, v.size)):
        medians[i] = _nanmedian_rows(v[None, :i])[0]
    with np.errstate(invalid="ignore"):
        mask = (v > factor * medians) & ~np.isnan(medians) & ~np.isnan(v)
    return mask


def _nanmedian_rows(matrix: np.ndarray) -> np.ndarray:
    if not np.isnan(matrix).any():
        return np.median(matrix, axis=1)
    out = np.full(matrix.shape[0], np.nan)
    rows = ~np.all(np.isnan(matrix), axis=1)
    out[rows] = np.nanmedian(matrix[rows], axis=1)
    return out
