"""The one list of figures, in the order of the paper: what the command line offers (--only), what is
drawn and in which order, and which TensorBoard tags are kept when event files are read. A figure's number
is its position here; modules and docs name figures, never number them. Each figure is one module with
NAME, TAGS (the tags it reads) and draw(runs, out_dir).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

from rnn_gradients.analysis import TABLE_TAGS, Run
from rnn_gradients.figures import (
    cures, divergence_vs_lr, grad_flow_through_time, grad_histograms, grad_norm_training, gradient_paths,
    learning_curves, length_generalization, loss_cliff, loss_vs_seq_len, recurrent_spectrum, scalar_toy,
)
from rnn_gradients.figures.style import FIGURE_FAILED, SKIPPED, STYLE, WRITTEN, FigureResult, FigureSkipped

log = logging.getLogger(__name__)


class Figure(NamedTuple):
    name: str  # also the file names: <name>.png, <name>.pdf
    draw: Callable[[Sequence[Run], Path], FigureResult]  # raises FigureSkipped when its runs are absent
    tags: frozenset[str]  # the TensorBoard tags it reads


FIGURES: tuple[Figure, ...] = tuple(
    Figure(module.NAME, module.draw, module.TAGS)
    for module in (scalar_toy, grad_flow_through_time, gradient_paths, learning_curves, grad_norm_training,
                   loss_vs_seq_len, divergence_vs_lr, loss_cliff, grad_histograms, cures, recurrent_spectrum,
                   length_generalization)
)
FIGURE_NAMES = tuple(f.name for f in FIGURES)


def needed_tags() -> frozenset[str]:
    """The TensorBoard tags the figures and the tables read (the rest of the event files is not kept)."""
    return frozenset().union(TABLE_TAGS, *(f.tags for f in FIGURES))


def draw_figures(runs: Sequence[Run], out_dir: Path, only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Draw every figure (or those in `only`); one whose runs are absent is skipped (info log), one that fails
    is logged with its traceback and the others still drawn. Returns {name: {status, files, reason, data}}."""
    report: dict[str, dict[str, Any]] = {}
    for figure in FIGURES:
        name = figure.name
        if only and name not in only:
            continue
        try:
            with matplotlib.rc_context(STYLE):
                result = figure.draw(runs, Path(out_dir))
            report[name] = {"status": WRITTEN, "files": [str(p) for p in result.files], "caption": result.caption,
                            "data": result.data}
        except FigureSkipped as skipped:
            log.info("Skipping figure %s: %s", name, skipped)
            report[name] = {"status": SKIPPED, "files": [], "reason": str(skipped)}
        except Exception as error:  # noqa: BLE001 - one broken figure must not stop the others
            log.exception("Figure %s failed", name)
            report[name] = {"status": FIGURE_FAILED, "files": [], "reason": f"{type(error).__name__}: {error}"}
        if report[name]["status"] != WRITTEN:
            stale = [p for p in (Path(out_dir) / f"{name}.png", Path(out_dir) / f"{name}.pdf") if p.exists()]
            if stale:  # not deleted: it may be the only copy of an earlier result
                log.warning("%s not redrawn this time; %s is left from an earlier run", name, ", ".join(map(str, stale)))
    return report
