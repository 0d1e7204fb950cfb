"""Figure 4: the total gradient norm during training, LSTM vs LSTM+clip, with the spikes marked.

A *spike* is a step whose pre-clip norm exceeds SPIKE_FACTOR (10) × the running median of the
previous SPIKE_WINDOW (50) logged steps. Near the start fewer than 50 previous steps exist: the
median of those available is used once there are at least SPIKE_MIN_HISTORY (10); earlier steps are
never spikes. The median ignores NaN; a non-finite (inf) norm after enough history is a spike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_gradients.figures.plots import (
    COLUMN_WIDTH, FigureResult, FigureSkipped, arm_color, arm_linestyle, finite, integer_steps, new_figure, save_figure,
)
from rnn_gradients.figures.runs import Run, choose_setting, first_seed, select, sort_key

PRECLIP_TAG = "grad_norm/total_preclip"
CLIPPED_TAG = "grad_norm/clipped"
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


def grad_norm_data(runs: Sequence[Run]) -> dict:
    """{'task', 'seq_len', 'arms': {arm: {'run', 'seed', 'steps', 'values', 'spikes' (mask), 'threshold'}}}."""
    candidates = [r for r in select(runs, experiment="arms", arm=("LSTM", "LSTM+clip")) if r.scalar(PRECLIP_TAG) is not None]
    both = [r for r in candidates
            if select(candidates, arm=("LSTM+clip" if r.get("arm") == "LSTM" else "LSTM"), task=r.get("task"), seq_len=r.get("seq_len"))]
    setting = choose_setting(both or candidates)
    if setting is None:
        return {}
    task, seq_len = setting
    data = {"task": task, "seq_len": seq_len, "arms": {}}
    for arm in ("LSTM", "LSTM+clip"):
        group = select(candidates, arm=arm, task=task, seq_len=seq_len)
        seeds = {r.get("seed") for r in group}
        other = {r.get("seed") for r in select(candidates, arm=("LSTM" if arm == "LSTM+clip" else "LSTM+clip"),
                                                  task=task, seq_len=seq_len)}
        common = [r for r in group if r.get("seed") in (seeds & other)] or group  # same seed in both arms if possible
        run = first_seed(common)
        if run is None:
            continue
        steps, values = run.scalar(PRECLIP_TAG)
        data["arms"][arm] = {"run": str(run.path), "seed": run.get("seed"), "steps": steps, "values": values,
                             "spikes": detect_spikes(values), "threshold": run.get("clip_threshold")}
    return data


def plot_grad_norm_training(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = grad_norm_data(runs)
    if not data or not data["arms"]:
        raise FigureSkipped(f"needs arms-experiment LSTM and/or LSTM+clip runs with {PRECLIP_TAG} in their event files "
                            "(python -m rnn_gradients.train -m experiment=arms)")
    fig, axes = new_figure(COLUMN_WIDTH + 0.5, 2.8)
    ax = axes[0, 0]
    seeds = sorted({a["seed"] for a in data["arms"].values()}, key=sort_key)
    spike_label_done = False
    for arm, a in data["arms"].items():
        color = arm_color(arm)
        values = finite(a["values"])
        values[values <= 0] = np.nan
        n_spikes = int(a["spikes"].sum())
        ax.plot(a["steps"], values, color=color, lw=0.7, alpha=0.9, ls=arm_linestyle(arm),
                label=f"{arm} ({n_spikes} spike{'' if n_spikes == 1 else 's'})")
        if a["spikes"].any():
            ax.plot(a["steps"][a["spikes"]], values[a["spikes"]], "v", color=color, mec="k", mew=0.4, ms=4.5,
                    label=None if spike_label_done else f"spike: > {SPIKE_FACTOR:g}× running median of previous {SPIKE_WINDOW} steps")
            spike_label_done = True
    thresholds = {a["threshold"] for arm, a in data["arms"].items() if arm.endswith("+clip") and a["threshold"] is not None}
    for theta in sorted(thresholds):
        ax.axhline(theta, color="k", ls="--", lw=0.8, label=f"clip threshold θ = {theta:g}")
    if not spike_label_done:
        ax.plot([], [], "v", color="gray", mec="k", mew=0.4, ms=4.5,
                label=f"spike: > {SPIKE_FACTOR:g}× running median of previous {SPIKE_WINDOW} steps (none)")
    ax.set_yscale("log")
    integer_steps(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel(r"pre-clip gradient norm $\|g\|_2$")
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    ax.set_title(f"Total gradient norm before clipping\n{data['task']}, T={data['seq_len']}, {seed_text}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, fontsize=6)
    files = save_figure(fig, out_dir, "grad_norm_training")
    caption = (f"{PRECLIP_TAG} of one run per arm (arms experiment, {data['task']}, T={data['seq_len']}, {seed_text}); "
               f"dashed: the clip threshold; triangles: spikes (> {SPIKE_FACTOR:g}x the running median of the previous "
               f"{SPIKE_WINDOW} steps).")
    return FigureResult("grad_norm_training", files, data, caption)
