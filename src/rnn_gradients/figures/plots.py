"""Shared figure machinery: paper style, arm colours, atomic PNG + PDF output, and the registry of figures.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot), so nothing here touches the
global backend or leaves figures open; the CLI still selects Agg.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

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

ARM_ORDER = ("RNN", "RNN+clip", "LSTM", "LSTM+clip")
ARM_COLORS = {"RNN": "#d62728", "RNN+clip": "#ff7f0e", "LSTM": "#1f77b4", "LSTM+clip": "#2ca02c"}
CLIP_COLORS = {"none": "#d62728", "norm": "#2ca02c", "value": "#ff7f0e"}


class FigureSkipped(Exception):
    """The runs a figure needs are absent; the message says which."""


@dataclass
class FigureResult:
    name: str
    files: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the plotted numbers (for tests and the summary)
    caption: str = ""


def arm_color(arm: str) -> str:
    return ARM_COLORS.get(arm, "#7f7f7f")


def arm_linestyle(arm: str) -> str:
    """Clipped arms dashed, so an arm that overlaps another (LSTM vs LSTM+clip early on) stays visible."""
    return "--" if str(arm).endswith("+clip") else "-"


def integer_steps(ax: Any, axis: str = "x") -> None:
    """Integer tick labels for a training-step axis."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def arm_sort_key(arm: Any) -> tuple:
    return (ARM_ORDER.index(arm), "") if arm in ARM_ORDER else (len(ARM_ORDER), str(arm))


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **subplot_kw: Any) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure and a 2-D array of axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (about 14 characters per inch at 9 pt)."""
    import textwrap

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
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.{digits}g}"


def all_figures() -> list[tuple[str, Callable]]:
    """(name, function(runs, out_dir) -> FigureResult) in the order of the paper."""
    from rnn_gradients.figures.curves import plot_learning_curves, plot_loss_vs_seq_len
    from rnn_gradients.figures.divergence import plot_divergence_vs_lr
    from rnn_gradients.figures.grad_flow import plot_grad_flow_through_time
    from rnn_gradients.figures.grad_norms import plot_grad_norm_training
    from rnn_gradients.figures.histograms import plot_grad_histograms
    from rnn_gradients.figures.scalar_toy import plot_scalar_toy

    return [
        ("scalar_toy", lambda runs, out: plot_scalar_toy(out)),
        ("grad_flow_through_time", plot_grad_flow_through_time),
        ("learning_curves", plot_learning_curves),
        ("grad_norm_training", plot_grad_norm_training),
        ("loss_vs_seq_len", plot_loss_vs_seq_len),
        ("divergence_vs_lr", plot_divergence_vs_lr),
        ("grad_histograms", plot_grad_histograms),
    ]


def needed_tags() -> frozenset[str]:
    """The TensorBoard tags the figures and tables read (the rest of the event files is not kept)."""
    from rnn_gradients.figures.curves import VAL_TAG
    from rnn_gradients.figures.divergence import LOSS_TAG
    from rnn_gradients.figures.grad_norms import CLIPPED_TAG, PRECLIP_TAG
    from rnn_gradients.figures.histograms import HIST_TAG

    return frozenset({VAL_TAG, LOSS_TAG, PRECLIP_TAG, CLIPPED_TAG, HIST_TAG})


FIGURE_NAMES = ("scalar_toy", "grad_flow_through_time", "learning_curves", "grad_norm_training",
                "loss_vs_seq_len", "divergence_vs_lr", "grad_histograms")


def make_figures(runs: Sequence[Any], out_dir: Path, only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Draw every figure; a figure whose runs are absent is skipped (info log), one that fails is
    logged with its traceback and the others still drawn. Returns {name: {status, files, reason, data}}."""
    report: dict[str, dict[str, Any]] = {}
    for name, function in all_figures():
        if only and name not in only:
            continue
        try:
            with matplotlib.rc_context(STYLE):
                result = function(runs, Path(out_dir))
            report[name] = {"status": "written", "files": [str(p) for p in result.files], "caption": result.caption,
                            "data": result.data}
        except FigureSkipped as skipped:
            log.info("Skipping figure %s: %s", name, skipped)
            report[name] = {"status": "skipped", "files": [], "reason": str(skipped)}
        except Exception as error:  # noqa: BLE001 - one broken figure must not stop the others
            log.exception("Figure %s failed", name)
            report[name] = {"status": "failed", "files": [], "reason": f"{type(error).__name__}: {error}"}
        if report[name]["status"] != "written":
            stale = [p for p in (Path(out_dir) / f"{name}.png", Path(out_dir) / f"{name}.pdf") if p.exists()]
            if stale:  # not deleted: it may be the only copy of an earlier result
                log.warning("%s not redrawn this time; %s is left from an earlier run", name, ", ".join(map(str, stale)))
    return report
