"""Medians and min–max over seeds: of curves over training steps, of curves over time steps t, and of
final numbers.

NaN and None are missing and left out; ±inf (a blown-up run, or a norm that underflowed to 0 in a log
ratio) is kept, so a diverged seed pulls a median up rather than vanishing from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def aggregate_curves(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Median and min..max over runs at each step logged by any of them.

    Returns {'steps', 'median', 'lo', 'hi', 'n'}; 'n' = how many runs have a (non-NaN) value there.
    """
    series = [(np.asarray(s, dtype=np.int64), np.asarray(v, dtype=float)) for s, v in series if len(s)]
    if not series:
        empty = np.zeros(0)
        return {"steps": empty.astype(np.int64), "median": empty, "lo": empty, "hi": empty, "n": empty.astype(int)}
    steps = np.unique(np.concatenate([s for s, _ in series]))
    matrix = np.full((len(series), len(steps)), np.nan)
    for i, (s, v) in enumerate(series):
        matrix[i, np.searchsorted(steps, s)] = v
    present = ~np.isnan(matrix)
    n = present.sum(axis=0)
    median = np.full(len(steps), np.nan)
    lo, hi = median.copy(), median.copy()
    for j in np.flatnonzero(n):
        column = matrix[present[:, j], j]
        median[j], lo[j], hi[j] = np.median(column), column.min(), column.max()
    return {"steps": steps, "median": median, "lo": lo, "hi": hi, "n": n}


def _present(values: Sequence[Any]) -> np.ndarray:
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=float)
    return v[~np.isnan(v)]


def summarize_values(values: Sequence[Any]) -> dict[str, Any]:
    """Median, min, max and count over the non-missing values."""
    v = _present(values)
    if v.size == 0:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def median_of(values: Sequence[Any]) -> float | None:
    """Median of the non-missing values (None when there is none)."""
    v = _present(values)
    return float(np.median(v)) if v.size else None


def median_curve(curves: Sequence[np.ndarray]) -> np.ndarray | None:
    """Median over curves at every t (curves of another length than the most common are ignored). The
    median of norms is also the median of their logs."""
    curves = [np.asarray(c, dtype=float) for c in curves if c is not None and np.size(c)]
    if not curves:
        return None
    length = Counter(len(c) for c in curves).most_common(1)[0][0]
    return np.median(np.stack([c for c in curves if len(c) == length]), axis=0)
