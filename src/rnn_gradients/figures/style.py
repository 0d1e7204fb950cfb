"""What every figure shares: paper style, sizes, arm colours (from a palette in the cells' registry order,
cells.arm_order, which analysis.arm_sort_key sorts by), atomic PNG + PDF output, the result of drawing a
figure, and number formatting.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot), so nothing here touches the
global backend or leaves figures open; the command line still selects Agg.
"""

from __future__ import annotations

import io
import logging
import textwrap
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnn_gradients.cells import arm_order
from rnn_gradients.io_utils import write_bytes_atomic

log = logging.getLogger(__name__)

PNG_DPI = 200
COLUMN_WIDTH = 3.5  # inches: one paper column
PAGE_WIDTH = 7.0  # inches: two columns

STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.framealpha": 0.85,
    "figure.titlesize": 9,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # embed TrueType: editable text in the PDF
    "savefig.dpi": PNG_DPI,
}

# Taken in cells.arm_order(): RNN red, RNN+clip orange, the no-carry LSTM purple, LSTM blue, LSTM+clip green
# (the colours of the figures before cells were plug-ins), then the rest of matplotlib's tab20 for new cells.
ARM_PALETTE = ("#d62728", "#ff7f0e", "#9467bd", "#e377c2", "#1f77b4", "#2ca02c", "#8c564b", "#bcbd22",
               "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
               "#dbdb8d", "#9edae5")
CLIP_COLORS = {"none": "#d62728", "norm": "#2ca02c", "value": "#ff7f0e"}  # by clipping mode (choices.CLIP_MODES)
OTHER_COLOR = "#7f7f7f"


# How to make the runs the arm comparisons draw (analysis.selection.comparison_runs), for their skip reasons.
MULTIRUN_HINT = "python -m rnn_gradients.train -m model=...,... data=...,..., or -m experiment=arms"

# What happened to a figure (the `status` of its entry in summary_numbers.json).
WRITTEN, SKIPPED, FIGURE_FAILED = "written", "skipped", "failed"


class FigureSkipped(Exception):
    """The runs a figure needs are absent; the message says which."""


@dataclass
class FigureResult:
    name: str
    files: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the plotted numbers (for tests and the summary)
    caption: str = ""


def arm_color(arm: str) -> str:
    """The arm's palette colour by its place in the registry's order; an arm of a cell outside the package
    (a user's) gets a colour of its own from the rest of the palette, the same in every figure."""
    order = arm_order()
    if arm in order:
        return ARM_PALETTE[order.index(arm) % len(ARM_PALETTE)]
    spare = ARM_PALETTE[len(order):] or ARM_PALETTE
    return spare[zlib.crc32(str(arm).encode()) % len(spare)]


def arm_linestyle(arm: str) -> str:
    """Clipped arms dashed, so an arm that overlaps another (LSTM vs LSTM+clip early on) stays visible."""
    return "--" if str(arm).endswith("+clip") else "-"


BASELINE_LABEL = "memoryless baseline"


def memoryless_baseline(ax: Any, label: bool = True) -> None:
    """The dashed line at normalized loss 1: no better than predicting without memory."""
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label=BASELINE_LABEL if label else None)


def integer_steps(ax: Any, axis: str = "x", max_ticks: int | None = None) -> None:
    """Integer tick labels for a training-step axis (at most `max_ticks` where a narrow panel needs room)."""
    locator = MaxNLocator(integer=True) if max_ticks is None else MaxNLocator(nbins=max_ticks, integer=True)
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(locator)


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **subplot_kw: Any) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure and a 2-D array of axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (about 14 characters per inch at 9 pt)."""
    width = int(fig.get_figwidth() * 14)
    fig.suptitle("\n".join(textwrap.wrap(text, width)))


def save_figure(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write <name>.png (200 dpi) and <name>.pdf atomically; returns both paths."""
    paths = []
    for fmt in ("png", "pdf"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata={"CreationDate": None} if fmt == "pdf" else None)
        path = Path(out_dir) / f"{name}.{fmt}"
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    log.info("Wrote %s (.png, .pdf)", Path(out_dir) / name)
    return paths


def wants_log_scale(values: Sequence[float] | np.ndarray, decades: float = 1.5) -> bool:
    """True when the positive finite values span more than `decades` decades."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    return v.size > 1 and np.log10(v.max() / v.min()) > decades


def finite(values: Any) -> np.ndarray:
    """A float copy with non-finite entries set to NaN (matplotlib leaves gaps there)."""
    v = np.array(values, dtype=float)
    v[~np.isfinite(v)] = np.nan
    return v


def fmt_num(value: Any, digits: int = 3) -> str:
    """A number with `digits` significant digits; 'n/a' for None and non-finite values."""
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.{digits}g}"
