"""Figure loss_cliff: the wall of Pascanu et al. (2013), measured. The batch loss along the update direction,
L(θ − α·g/‖g‖) against the step length α, at the step of each run's largest pre-clip gradient norm; one line
per clipping mode (first seed; exploding experiment, one optimizer and learning rate), a star where the
step the optimizer actually took landed (‖Δθ‖, loss after it), and, for a run that diverged, the slice at
the step before the divergence (dashed, hollow marker). An unclipped step of length ∝ ‖g‖ jumps the wall;
a norm-clipped one stays at its foot. The numbers: analysis.cliff_data.loss_cliff_data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnn_gradients import contract
from rnn_gradients.analysis import Run, loss_cliff_data, select
from rnn_gradients.figures.style import (
    CLIP_COLORS, COLUMN_WIDTH, OTHER_COLOR, FigureResult, FigureSkipped, finite, fmt_num, memoryless_baseline,
    new_figure, save_figure,
)

NAME = "loss_cliff"
TAGS: frozenset[str] = frozenset()  # the loss-cliff files only
RERUN = "python -m rnn_gradients.train -m experiment=exploding"


def _skip_reason(runs: Sequence[Run]) -> str:
    n = len(select(runs, experiment="exploding"))
    if n:
        return (f"none of the {n} finished exploding-experiment runs has {contract.LOSS_CLIFF_FILE} (runs made "
                f"before the loss-cliff recorder, or with it turned off): rerun them ({RERUN})")
    return f"needs {contract.LOSS_CLIFF_FILE} of finished exploding-experiment runs ({RERUN})"


def _landing(entry: dict[str, Any]) -> str:
    """Where the step taken landed, in words."""
    if not math.isfinite(entry["actual_alpha"]):
        return "‖Δθ‖ of the step taken not finite (or not recorded)"
    where = (f"loss {fmt_num(entry['actual_loss'])}× baseline, {entry['step_rise']:+.2f} decades over the loss at "
             "the smallest α" if math.isfinite(entry["step_rise"]) else "a non-finite loss")
    return f"step taken ‖Δθ‖ = {fmt_num(entry['actual_alpha'])}, landed on {where}"


def _describe(mode: str, info: dict[str, Any]) -> str:
    m = info["max_norm"]
    text = (f"clipping {mode} (seed {info['seed']}): largest ‖g‖ = {fmt_num(m['grad_norm'])} at step {m['step']}, "
            f"{_landing(m)}")
    b = info["before_divergence"]
    if b is not None:
        text += (f"; diverged: at step {b['step']}, the step before, ‖g‖ = {fmt_num(b['grad_norm'])}, "
                 f"{_landing(b)}")
    return text


def _marker(color: str, hollow: bool) -> dict[str, Any]:
    return {"color": color, "mec": color if hollow else "k", "mew": 1.0 if hollow else 0.6,
            "mfc": "white" if hollow else color}


def draw(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = loss_cliff_data(runs)
    if not data:
        raise FigureSkipped(_skip_reason(runs))
    fig, axes = new_figure(COLUMN_WIDTH + 1.0, 3.4)
    ax = axes[0, 0]
    off_the_wall: list[tuple[float, str, bool]] = []  # steps that landed on a non-finite loss: drawn at the top
    for mode, info in data["modes"].items():
        color = CLIP_COLORS.get(mode, OTHER_COLOR)
        for kind, style in ((contract.CLIFF_AT_MAX_NORM, "-"), (contract.CLIFF_BEFORE_DIVERGENCE, "--")):
            entry = info[kind]
            if entry is None:
                continue
            when = "largest ‖g‖" if kind == contract.CLIFF_AT_MAX_NORM else "before divergence"
            ax.plot(entry["alphas"], finite(entry["loss"]), style, color=color, marker=".", ms=3,
                    lw=1.3 if style == "-" else 1.0,
                    label=f"clipping {mode}, {when}: step {entry['step']}, ‖g‖ = {fmt_num(entry['grad_norm'])}")
            hollow = kind == contract.CLIFF_BEFORE_DIVERGENCE
            if not math.isfinite(entry["actual_alpha"]):
                continue
            if math.isfinite(entry["actual_loss"]) and entry["actual_loss"] > 0:
                ax.plot([entry["actual_alpha"]], [entry["actual_loss"]], "*", ms=10, zorder=5, **_marker(color, hollow))
            else:
                off_the_wall.append((entry["actual_alpha"], color, hollow))
    ax.set_xscale("log")
    ax.set_yscale("log")
    memoryless_baseline(ax)
    if off_the_wall:
        top = ax.get_ylim()[1]
        for alpha, color, hollow in off_the_wall:
            ax.plot([alpha], [top], "^", ms=7, clip_on=False, zorder=5, **_marker(color, hollow))
        ax.set_ylim(top=top)
    # what the markers mean, in black (their colour is the line's; hollow: the step before a divergence)
    ax.plot([], [], "*", ms=8, color="k", label="the step taken (‖Δθ‖, loss after it); hollow: before divergence")
    if off_the_wall:
        ax.plot([], [], "^", ms=6, color="k", label="the step taken landed on a non-finite loss (drawn at the top)")
    ax.legend(loc="upper left", fontsize=5.5)
    ax.set_xlabel(r"step length $\alpha$ along $-g/\|g\|$ (log)")
    ax.set_ylabel("batch loss / baseline (log)")
    optimizer, lr = data["optimizer"], fmt_num(data["lr"])
    ax.set_title(f"Loss along the gradient direction: {contract.LSTM}, {optimizer} lr {lr}, "
                 f"{data['task']} T={data['seq_len']}", fontsize=7.5)
    files = save_figure(fig, out_dir, NAME)
    pair = "" if data["paired"] else " (no setting has both an unclipped and a norm-clipped run with the file)"
    caption = (f"Exploding experiment, {optimizer} at lr {lr}{pair}: the batch loss L(θ − α·g/‖g‖) / baseline "
               "against α, at the step of each run's largest pre-clip gradient norm (solid) and, in a diverged run, "
               "at the step before the divergence (dashed); stars: where the step the optimizer took landed. "
               + "; ".join(_describe(mode, info) for mode, info in data["modes"].items()) + ".")
    return FigureResult(NAME, files, data, caption)
