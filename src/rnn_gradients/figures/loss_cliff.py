"""Figure loss_cliff: the wall of Pascanu et al. (2013), from real runs. The batch loss along the update
direction, L(θ − α·g/‖g‖) against the step length α; one line per clipping mode (first seed; exploding
experiment, one optimizer and learning rate), a star where the step the optimizer actually took landed
(‖Δθ‖, loss after it), a triangle at the top where that loss was not finite.

A run that did not diverge draws its steepest step (largest pre-clip ‖g‖): a solid line, filled markers. A
diverged run draws its first uphill step (the first update that multiplied its batch loss) instead: a dashed
line, hollow markers. Its steepest step and its step before the divergence come from after it blew up and
would stretch the loss axis over every other line, so they are in the caption and the summary table, not
drawn (analysis.cliff_data.drawn_kind). What the measured runs show: README, the loss_cliff row of the
results. The numbers: analysis.cliff_data.loss_cliff_data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnn_gradients import contract
from rnn_gradients.analysis import Run, loss_cliff_data
from rnn_gradients.analysis.divergence_rules import exploding_runs
from rnn_gradients.figures.style import (
    CLIP_COLORS, COLUMN_WIDTH, OTHER_COLOR, FigureResult, FigureSkipped, finite, fmt_num, memoryless_baseline,
    new_figure, save_figure,
)

NAME = "loss_cliff"
TAGS: frozenset[str] = frozenset()  # the loss-cliff files only
RERUN = "python -m rnn_gradients.train -m experiment=exploding"
WHEN = {contract.CLIFF_FIRST_UPHILL: "first uphill step", contract.CLIFF_AT_MAX_NORM: "largest ‖g‖"}


def _skip_reason(runs: Sequence[Run]) -> str:
    n = len(exploding_runs(runs))
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
    u = info[contract.CLIFF_FIRST_UPHILL]
    if u is not None:
        text += (f"; first uphill step: step {u['step']}, ‖g‖ = {fmt_num(u['grad_norm'])}, "
                 f"{_landing(u)}")
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
        kind = info["drawn"]
        entry, hollow = info[kind], kind == contract.CLIFF_FIRST_UPHILL
        ax.plot(entry["alphas"], finite(entry["loss"]), "--" if hollow else "-", color=color, marker=".", ms=3,
                label=f"clipping {mode}, {WHEN[kind]}: step {entry['step']}, ‖g‖ = {fmt_num(entry['grad_norm'])}")
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
    # what the markers mean, in black (their colour is the line's; hollow, on a dashed line: a diverged run's first
    # uphill step, the slice drawn_kind picks for it)
    ax.plot([], [], "*", ms=8, color="k", label="the step taken (‖Δθ‖, loss after it); hollow: a diverged run's "
            "first uphill step")
    if off_the_wall:
        ax.plot([], [], "^", ms=6, color="k", label="the step taken landed on a non-finite loss (drawn at the top)")
    ax.legend(loc="upper left", fontsize=5.5)
    ax.set_xlabel(r"step length $\alpha$ along $-g/\|g\|$ (log)")
    ax.set_ylabel("batch loss / baseline (log)")
    optimizer, lr = data["optimizer"], fmt_num(data["lr"])
    ax.set_title(f"Loss along the gradient direction: {data['cell']}, {optimizer} lr {lr}, "
                 f"{data['task']} T={data['seq_len']}", fontsize=7.5)
    files = save_figure(fig, out_dir, NAME)
    pair = "" if data["paired"] else " (no setting has both an unclipped and a norm-clipped run with the file)"
    caption = (f"Exploding experiment, {optimizer} at lr {lr}{pair}: the batch loss L(θ − α·g/‖g‖) / baseline "
               "against α, at the step of each run's largest pre-clip gradient norm (solid) or, in a diverged run, at "
               "its first uphill step (the first update that multiplied its batch loss by "
               "callbacks.loss_cliff.uphill_factor, 2 by default; dashed, hollow markers); stars: where the step the "
               "optimizer took landed. "
               + "; ".join(_describe(mode, info) for mode, info in data["modes"].items()) + ".")
    return FigureResult(NAME, files, data, caption)
