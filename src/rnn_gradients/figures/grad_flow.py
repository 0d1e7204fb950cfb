"""Figure 2: gradient flow through time, ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) against t, from grad_flow.npz.

(a) arms experiment: RNN and LSTM at initialization (training step 0) and after training (the last
    measurement), the preferred task (adding) at the largest seq_len present, median over seeds at
    every t (the median of norms is also the median of their logs).
(b) forget_bias experiment: ‖∂L/∂c_t‖ at initialization for each forget-gate bias (median over seeds).
Each curve is labelled with its log10(first/last) = log10(‖∂L/∂x_0‖ / ‖∂L/∂x_{T-1}‖) (below 0: the
gradient vanishes going back in time; above 0: it grows).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients.figures.plots import (
    COLUMN_WIDTH, PAGE_WIDTH, FigureResult, FigureSkipped, arm_color, integer_steps, new_figure, save_figure,
)
from rnn_gradients.figures.runs import Run, choose_setting, log10_ratio, select, sort_key

log = logging.getLogger(__name__)

QUANTITY_LABEL = {"h": r"$\|\partial L/\partial h_t\|$", "c": r"$\|\partial L/\partial c_t\|$"}
CELL_COLOR = "#9467bd"


def median_curve(curves: Sequence[np.ndarray]) -> np.ndarray | None:
    """Median over curves at every t (curves of another length than the most common are ignored)."""
    curves = [np.asarray(c, dtype=float) for c in curves if c is not None and np.size(c)]
    if not curves:
        return None
    length = Counter(len(c) for c in curves).most_common(1)[0][0]
    return np.median(np.stack([c for c in curves if len(c) == length]), axis=0)


def _ratio_text(value: float) -> str:
    if math.isfinite(value):
        return f"{value:+.1f}"
    return "underflow" if value == float("-inf") else "n/a"


def grad_flow_data(runs: Sequence[Run]) -> dict[str, Any]:
    """The curves the figure draws: {'arms': {...} | None, 'forget_bias': {...} | None}."""
    data: dict[str, Any] = {"arms": None, "forget_bias": None}
    arms_runs = [r for r in select(runs, experiment="arms", arm=("RNN", "LSTM")) if r.grad_flow is not None]
    setting = choose_setting(arms_runs)
    if setting:
        task, seq_len = setting
        panel: dict[str, Any] = {"task": task, "seq_len": seq_len, "curves": {}}
        for arm in ("RNN", "LSTM"):
            chosen = select(arms_runs, arm=arm, task=task, seq_len=seq_len)
            for q in ("h", "c"):
                matrices = [getattr(r.grad_flow, q) for r in chosen]
                pairs = [(m, r) for m, r in zip(matrices, chosen) if m is not None]
                if not pairs:
                    continue
                init = median_curve([m[0] for m, r in pairs if r.grad_flow.has_init])
                final = median_curve([m[-1] for m, _ in pairs])
                panel["curves"][(arm, q)] = {
                    "init": init,
                    "final": final,
                    "init_ratio": log10_ratio(init) if init is not None else float("nan"),
                    "final_ratio": log10_ratio(final) if final is not None else float("nan"),
                    "final_step": max(int(r.grad_flow.steps[-1]) for _, r in pairs),
                    "seeds": sorted((r.get("seed") for _, r in pairs), key=sort_key),
                }
        if panel["curves"]:
            data["arms"] = panel
    fb_runs = [r for r in select(runs, experiment="forget_bias")
               if r.grad_flow is not None and r.grad_flow.c is not None and r.grad_flow.has_init]
    setting = choose_setting(fb_runs)
    if setting:
        task, seq_len = setting
        chosen = select(fb_runs, task=task, seq_len=seq_len)
        curves = {}
        for fb in sorted({r.get("forget_bias") for r in chosen}, key=sort_key):
            group = [r for r in chosen if r.get("forget_bias") == fb]
            curve = median_curve([r.grad_flow.c[0] for r in group])
            curves[fb] = {"init": curve, "init_ratio": log10_ratio(curve),
                          "seeds": sorted((r.get("seed") for r in group), key=sort_key)}
        data["forget_bias"] = {"task": task, "seq_len": seq_len, "curves": curves}
    return data


def _positive(curve: np.ndarray) -> np.ndarray:
    c = np.array(curve, dtype=float)
    c[~(np.isfinite(c) & (c > 0))] = np.nan  # zeros (underflow) leave a gap on the log axis
    return c


def _mark_underflow(ax, curve: np.ndarray, color: Any) -> None:
    """Where the first time steps' norms are exactly 0 (below float32's range), say so at the gap."""
    positive = np.flatnonzero(np.isfinite(curve) & (curve > 0))
    if positive.size and positive[0] > 0:
        k = int(positive[0])
        ax.annotate(f"0 for t < {k}\n(underflow)", (k, curve[k]), xytext=(-3, 2), textcoords="offset points", ha="right",
                    fontsize=6, color=color, va="bottom")


def _seed_text(seeds: Sequence[Any]) -> str:
    return f"median over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}" if seeds else "no seed"


def plot_grad_flow_through_time(runs: Sequence[Run], out_dir: Path) -> FigureResult:
    data = grad_flow_data(runs)
    if data["arms"] is None and data["forget_bias"] is None:
        raise FigureSkipped("needs grad_flow.npz of arms-experiment RNN/LSTM runs or of forget_bias-experiment runs "
                            "(python -m rnn_gradients.train -m experiment=arms / experiment=forget_bias)")
    panels = [p for p in ("arms", "forget_bias") if data[p] is not None]
    fig, axes = new_figure(PAGE_WIDTH if len(panels) == 2 else COLUMN_WIDTH + 0.6, 3.3, 1, len(panels))
    captions = []
    for ax, panel in zip(axes[0], panels):
        info = data[panel]
        seq_len = info["seq_len"]
        if panel == "arms":
            seeds: list[Any] = []
            step = 0
            for (arm, q), c in info["curves"].items():
                color = CELL_COLOR if q == "c" else arm_color(arm)
                name = f"{arm} {QUANTITY_LABEL[q]}"
                if c["init"] is not None:
                    ax.plot(np.arange(len(c["init"])), _positive(c["init"]), "--", color=color, lw=1.0,
                            label=f"{name} init [{_ratio_text(c['init_ratio'])}]")
                _mark_underflow(ax, c["final"], color)
                ax.plot(np.arange(len(c["final"])), _positive(c["final"]), "-", color=color,
                        label=f"{name} trained [{_ratio_text(c['final_ratio'])}]")
                seeds = c["seeds"] if len(c["seeds"]) > len(seeds) else seeds
                step = max(step, c["final_step"])
            ax.set_title(f"(a) {info['task']}, T={seq_len}: init vs after {step} steps\n({_seed_text(seeds)})")
            captions.append(f"(a) arms experiment, {info['task']} task, T={seq_len}, {_seed_text(seeds)}; dashed = "
                            f"initialization (step 0), solid = after training (step {step}).")
        else:
            import matplotlib

            cmap = matplotlib.colormaps["plasma"]
            fbs = list(info["curves"])
            seeds = []
            for i, fb in enumerate(fbs):
                c = info["curves"][fb]
                color = cmap(0.05 + 0.75 * i / max(1, len(fbs) - 1))  # plasma's bright yellow end left out
                _mark_underflow(ax, c["init"], color)
                ax.plot(np.arange(len(c["init"])), _positive(c["init"]), color=color,
                        label=f"forget bias {fb:g} [{_ratio_text(c['init_ratio'])}]" if isinstance(fb, (int, float))
                        else f"forget bias {fb} [{_ratio_text(c['init_ratio'])}]")
                seeds = c["seeds"] if len(c["seeds"]) > len(seeds) else seeds
            ax.set_title(f"({'b' if len(panels) == 2 else 'a'}) LSTM {QUANTITY_LABEL['c']} at init vs forget bias\n"
                         f"{info['task']}, T={seq_len} ({_seed_text(seeds)})")
            captions.append(f"forget_bias experiment: LSTM cell-state gradient at initialization, {info['task']} "
                            f"task, T={seq_len}, {_seed_text(seeds)}.")
        ax.set_yscale("log")
        integer_steps(ax)
        ax.set_xlabel("time step t (input position)")
        ax.set_ylabel("gradient norm (log scale)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=6, title="[log10(first/last)]",
                  title_fontsize=6)
    files = save_figure(fig, out_dir, "grad_flow_through_time")
    return FigureResult("grad_flow_through_time", files, data, " ".join(captions))
