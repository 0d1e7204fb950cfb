"""Re-binning gradient histograms onto one common grid, so that a figure can show them as one heat map.

Each logged histogram has its own bucket edges (min..max of that step). All of them are re-binned onto one
grid over the global ±max|value|, assuming counts are uniform within each source bucket (the total count
is preserved). The grid is symmetric-log: linear within ±linthresh, logarithmic beyond, with linthresh =
the finest source bucket width (what the logged histograms can resolve), but at least
max|value| / 10^MAX_DECADES. So a few exploding steps with a wide range do not squash the ordinary steps
into one bin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnn_gradients.analysis.event_files import Histogram

GRID_BINS = 120
MAX_DECADES = 4


def rebin(edges: np.ndarray, counts: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Counts of a histogram with bucket edges `edges` (B+1,) re-distributed onto `new_edges` (N+1,).

    Within a source bucket the count is spread uniformly; a zero-width bucket is a point mass, put in
    the new bin that contains it (the last bin includes its right edge). Mass outside new_edges is dropped.
    """
    edges, counts, new_edges = (np.asarray(a, dtype=float) for a in (edges, counts, new_edges))
    out = np.zeros(len(new_edges) - 1)
    widths = np.diff(edges)
    wide = widths > 0
    if wide.any():
        lo, hi, c = edges[:-1][wide], edges[1:][wide], counts[wide]
        overlap = np.clip(np.minimum(hi[:, None], new_edges[None, 1:]) - np.maximum(lo[:, None], new_edges[None, :-1]), 0, None)
        out += (c[:, None] * overlap / (hi - lo)[:, None]).sum(axis=0)
    if (~wide).any():
        points, c = edges[1:][~wide], counts[~wide]
        inside = (points >= new_edges[0]) & (points <= new_edges[-1])
        index = np.clip(np.searchsorted(new_edges, points[inside], side="right") - 1, 0, len(out) - 1)
        np.add.at(out, index, c[inside])
    return out


def symlog_edges(max_abs: float, linthresh: float, bins: int = GRID_BINS) -> np.ndarray:
    """Bin edges over [-max_abs, max_abs], uniform in asinh(v / linthresh)."""
    u = np.linspace(-np.arcsinh(max_abs / linthresh), np.arcsinh(max_abs / linthresh), bins + 1)
    edges = linthresh * np.sinh(u)
    edges[0], edges[-1] = -max_abs, max_abs
    return edges


def common_grid(histograms: Sequence[Histogram], bins: int = GRID_BINS) -> tuple[np.ndarray, float]:
    """(edges, linthresh) of the grid every histogram is re-binned onto (see the module docstring)."""
    max_abs = max(max(abs(h.min), abs(h.max)) for h in histograms)
    if not max_abs > 0:
        return np.linspace(-1.0, 1.0, bins + 1), 1.0
    widths = [np.diff(h.edges)[np.diff(h.edges) > 0].min() for h in histograms if np.any(np.diff(h.edges) > 0)]
    finest = min(widths) if widths else max_abs
    linthresh = min(max_abs, max(finest, max_abs / 10 ** MAX_DECADES))
    return symlog_edges(max_abs, linthresh, bins), linthresh


def heatmap(histograms: Sequence[Histogram], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps (S,), counts (S, N)) of the histograms re-binned onto `grid`."""
    steps = np.array([h.step for h in histograms], dtype=float)
    return steps, np.stack([rebin(h.edges, h.counts, grid) for h in histograms])
