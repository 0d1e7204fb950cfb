"""The numbers each figure draws, from the finished runs (figures/ only draws them; the tests check them).

The arm comparisons draw the runs of selection.comparison_runs (the arms experiment where there is one,
otherwise the runs of no experiment: a plain multirun), every arm and task those runs have, in the cells'
registry order; no cell is named here.

learning_curves: contract.VAL_NORMALIZED_LOSS against training step per (task, seq_len) and arm: median over
    seeds at each logged step, min..max band.
loss_vs_seq_len: the final val_normalized_loss of the summary against seq_len, per task and arm.
grad_flow_through_time: from the grad-flow curves, (a) one panel per task at its largest seq_len, every cell
    present (flow_arms), h and, where the cell has one, c, at initialization (step 0) and after training
    (last measurement); (b) the cell-state gradient at initialization per forget bias (forget_bias
    experiment). Curves: medians over seeds at every t; their log10 ratios: flow_ratios.median_log10_ratio,
    the median of the per-seed ratios that every table reports (not the ratio of the median curve).
gradient_paths: the two paths of ∂L/∂c_t (carry through c_{t+1}, output through h_t) per forget bias of the
    forget_bias experiment, at initialization and at the last measurement, medians over seeds (the log10
    ratio of ‖∂L/∂c_t‖: flow_ratios.median_log10_ratio).
grad_norm_training: contract.PRECLIP_NORM of one run per arm, the same seed in every arm where possible,
    with its spikes.
grad_histograms: the W_hh gradient histograms of one run per arm, re-binned onto one common grid.
(divergence_vs_lr draws divergence_rules.divergence_table.)
A normalized loss of 1 is the memoryless baseline; below 1 the model remembers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis.flow_ratios import FINAL, INIT, median_log10_ratio
from rnn_gradients.analysis.histogram_grid import common_grid, heatmap
from rnn_gradients.analysis.run_folder import Run
from rnn_gradients.analysis.seed_stats import aggregate_curves, median_curve, summarize_values
from rnn_gradients.analysis.selection import (
    arm_sort_key, cell_label, cell_labels, choose_setting, comparison_runs, comparison_source, first_seed, select,
    sort_key,
)
from rnn_gradients.analysis.spikes import detect_spikes

RECURRENT_WEIGHT = contract.RECURRENT_WEIGHT
W_HH_HIST_TAG = contract.grad_hist_tag(RECURRENT_WEIGHT)
FLOW_STATES = ("h", "c")  # the states GradFlow reads; a cell without a cell state has only h
FORGET_BIAS_EXPERIMENT = "forget_bias"  # conf/experiment/forget_bias.yaml: one cell, several forget-gate biases


def learning_curve_data(runs: Sequence[Run]) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    """{(task, seq_len): {arm: aggregate_curves(...) + {'seeds': [...]}}} of the compared runs (comparison_runs)."""
    data: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    chosen = [r for r in comparison_runs(runs) if r.scalar(contract.VAL_NORMALIZED_LOSS) is not None]
    keys = sorted({(r.get("task"), r.get("seq_len")) for r in chosen}, key=lambda k: (sort_key(k[0]), sort_key(k[1])))
    for task, seq_len in keys:
        panel = {}
        for arm in sorted({r.get("arm") for r in chosen}, key=arm_sort_key):
            group = select(chosen, task=task, seq_len=seq_len, arm=arm)
            if group:
                agg = aggregate_curves([r.scalar(contract.VAL_NORMALIZED_LOSS) for r in group])
                agg["seeds"] = sorted((r.get("seed") for r in group), key=sort_key)
                panel[arm] = agg
        data[(task, seq_len)] = panel
    return data


def loss_vs_seq_len_data(runs: Sequence[Run]) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """{task: {arm: {seq_len: summarize_values(final val_normalized_loss over seeds) + seeds}}} of the
    compared runs (comparison_runs)."""
    data: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    chosen = [r for r in comparison_runs(runs) if r.get("task") and r.get("seq_len") is not None]
    for task in sorted({r.get("task") for r in chosen}, key=sort_key):
        per_arm: dict[str, dict[int, dict[str, Any]]] = {}
        for arm in sorted({r.get("arm") for r in chosen}, key=arm_sort_key):
            points = {}
            for seq_len in sorted({r.get("seq_len") for r in chosen}, key=sort_key):
                group = select(chosen, task=task, arm=arm, seq_len=seq_len)
                if group:
                    points[seq_len] = summarize_values([r.summary.get("val_normalized_loss") for r in group])
                    points[seq_len]["seeds"] = len(group)
            if points:
                per_arm[arm] = points
        data[task] = per_arm
    return data


def _median_ratio(runs: Sequence[Run], state: str, when: str) -> float:
    """flow_ratios.median_log10_ratio, NaN where no run has the curve (a legend then says n/a)."""
    value = median_log10_ratio(runs, state, when)
    return float("nan") if value is None else value


def flow_arms(arms: Iterable[Any]) -> list[str]:
    """The arms the gradient-flow figure draws, in registry order: every unclipped arm present, and a clipped
    arm only where its unclipped twin is absent (the twins start from the same initialization, so at step 0
    their curves are the same and the clipped one would only double a line)."""
    present = {a for a in arms if a is not None}
    return sorted((a for a in present if cell_label(a) == a or cell_label(a) not in present), key=arm_sort_key)


def _flow_curves(group: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """{state: {'init', 'final', 'init_ratio', 'final_ratio', 'final_step', 'seeds'}} of one arm's runs, for
    each state of FLOW_STATES the cell has (an RNN has no c): medians over seeds at every t, and the median of
    the per-seed log10 ratios (flow_ratios)."""
    curves: dict[str, dict[str, Any]] = {}
    for q in FLOW_STATES:
        pairs = [(getattr(r.grad_flow, q), r) for r in group if getattr(r.grad_flow, q) is not None]
        if not pairs:
            continue
        init = median_curve([m[0] for m, r in pairs if r.grad_flow.has_init])
        final = median_curve([m[-1] for m, _ in pairs])
        runs = [r for _, r in pairs]
        curves[q] = {"init": init, "final": final, "init_ratio": _median_ratio(runs, q, INIT),
                     "final_ratio": _median_ratio(runs, q, FINAL),
                     "final_step": max(int(r.grad_flow.steps[-1]) for _, r in pairs),
                     "seeds": sorted((r.get("seed") for _, r in pairs), key=sort_key)}
    return curves


def grad_flow_task_panels(runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """{task: {'task', 'seq_len', 'curves': {(arm, state): {...}}}}: one panel per task of the compared runs
    (selection.comparison_runs), at that task's largest seq_len, with every cell present (`flow_arms`)."""
    flow = [r for r in comparison_runs(runs)
            if r.grad_flow is not None and r.get("task") is not None and r.get("seq_len") is not None]
    panels: dict[str, dict[str, Any]] = {}
    for task in sorted({r.get("task") for r in flow}, key=sort_key):
        seq_len = max(int(r.get("seq_len")) for r in select(flow, task=task))
        chosen = select(flow, task=task, seq_len=seq_len)
        curves = {(arm, q): c for arm in flow_arms(r.get("arm") for r in chosen)
                  for q, c in _flow_curves(select(chosen, arm=arm)).items()}
        if curves:
            panels[task] = {"task": task, "seq_len": seq_len, "curves": curves}
    return panels


def forget_bias_flow_panel(runs: Sequence[Run]) -> dict[str, Any] | None:
    """{'task', 'seq_len', 'cell', 'curves': {fb: {'init', 'init_ratio', 'seeds'}}}: the cell-state gradient at
    initialization per forget bias of the forget_bias experiment (None without such runs)."""
    fb_runs = [r for r in select(runs, experiment=FORGET_BIAS_EXPERIMENT)
               if r.grad_flow is not None and r.grad_flow.c is not None and r.grad_flow.has_init]
    setting = choose_setting(fb_runs)
    if not setting:
        return None
    task, seq_len = setting
    chosen = select(fb_runs, task=task, seq_len=seq_len)
    curves = {}
    for fb in sorted({r.get("forget_bias") for r in chosen}, key=sort_key):
        group = [r for r in chosen if r.get("forget_bias") == fb]
        curve = median_curve([r.grad_flow.c[0] for r in group])
        curves[fb] = {"init": curve, "init_ratio": _median_ratio(group, "c", INIT),
                      "seeds": sorted((r.get("seed") for r in group), key=sort_key)}
    return {"task": task, "seq_len": seq_len, "cell": cell_labels(chosen), "curves": curves}


def grad_flow_data(runs: Sequence[Run]) -> dict[str, Any]:
    """The curves of the gradient-flow figure: {'tasks': grad_flow_task_panels (may be {}), 'source' (where the
    compared runs come from, in words), 'forget_bias': forget_bias_flow_panel | None}."""
    return {"tasks": grad_flow_task_panels(runs), "source": comparison_source(comparison_runs(runs)),
            "forget_bias": forget_bias_flow_panel(runs)}


def _shared_seed(groups: Iterable[Sequence[Run]]) -> Any:
    """The seed the most arms have (ties: the smallest): the arms then compare the same data and init."""
    counts = Counter(seed for group in groups for seed in {r.get("seed") for r in group})
    return min(counts, key=lambda seed: (-counts[seed], sort_key(seed)), default=None)


def grad_norm_data(runs: Sequence[Run]) -> dict:
    """{'task', 'seq_len', 'source', 'arms': {arm: {'run', 'seed', 'steps', 'values', 'spikes' (mask),
    'threshold'}}}: one run of every arm of the compared runs (selection.comparison_runs) at a setting where the
    most arms are (the preferred task first, then the largest seq_len), the same seed in all arms when possible."""
    candidates = [r for r in comparison_runs(runs) if r.scalar(contract.PRECLIP_NORM) is not None
                  and r.get("task") is not None and r.get("seq_len") is not None]
    arms_at: dict[tuple, set] = {}
    for r in candidates:
        arms_at.setdefault((r.get("task"), r.get("seq_len")), set()).add(r.get("arm"))
    most = max((len(a) for a in arms_at.values()), default=0)
    setting = choose_setting([r for r in candidates if len(arms_at[(r.get("task"), r.get("seq_len"))]) == most])
    if setting is None:
        return {}
    task, seq_len = setting
    chosen = select(candidates, task=task, seq_len=seq_len)
    groups = {arm: select(chosen, arm=arm) for arm in sorted({r.get("arm") for r in chosen}, key=arm_sort_key)}
    seed = _shared_seed(groups.values())
    data = {"task": task, "seq_len": seq_len, "source": comparison_source(chosen), "arms": {}}
    for arm, group in groups.items():
        run = first_seed([r for r in group if r.get("seed") == seed] or group)
        steps, values = run.scalar(contract.PRECLIP_NORM)
        data["arms"][arm] = {"run": str(run.path), "seed": run.get("seed"), "steps": steps, "values": values,
                             "spikes": detect_spikes(values), "threshold": run.get("clip_threshold")}
    return data


def grad_histogram_data(runs: Sequence[Run]) -> dict[str, Any]:
    """{'task', 'seq_len', 'source', 'grid', 'linthresh', 'arms': {arm: {'run', 'seed', 'steps', 'counts',
    'n_histograms'}}}: the first seed of each arm of the compared runs (comparison_runs), its W_HH_HIST_TAG
    histograms re-binned onto one common grid."""
    candidates = [r for r in comparison_runs(runs)
                  if r.events is not None and r.events.histograms.get(W_HH_HIST_TAG)]
    setting = choose_setting(candidates)
    if setting is None:
        return {}
    task, seq_len = setting
    chosen = {}
    for arm in sorted({r.get("arm") for r in candidates}, key=arm_sort_key):
        run = first_seed(select(candidates, arm=arm, task=task, seq_len=seq_len))
        if run is not None:
            chosen[arm] = run
    hists = {arm: [h for h in run.events.histograms[W_HH_HIST_TAG] if h.num > 0 and np.isfinite(h.min) and np.isfinite(h.max)]
             for arm, run in chosen.items()}
    hists = {arm: hs for arm, hs in hists.items() if hs}
    if not hists:
        return {}
    grid, linthresh = common_grid([h for hs in hists.values() for h in hs])
    data = {"task": task, "seq_len": seq_len, "source": comparison_source(candidates), "grid": grid,
            "linthresh": linthresh, "arms": {}}
    for arm, hs in hists.items():
        steps, counts = heatmap(hs, grid)
        data["arms"][arm] = {"run": str(chosen[arm].path), "seed": chosen[arm].get("seed"), "steps": steps,
                             "counts": counts, "n_histograms": len(hs)}
    return data


def _measured(rows: np.ndarray) -> list[np.ndarray]:
    """The rows of a path matrix that were measured (all-NaN rows: steps before a resume that predates them)."""
    return [row for row in rows if not np.all(np.isnan(row))]


def gradient_paths_data(runs: Sequence[Run]) -> dict[str, Any]:
    """{'task', 'seq_len', 'biases': {fb: {'init': {'carry', 'output'} | None, 'final': {'carry', 'output'},
    'final_step', 'seeds', 'carry_dominates_init', 'carry_dominates_final', 'c_ratio_init', 'c_ratio_final'}},
    'n_without_paths'}: medians over seeds at every t of ‖carry_t‖ and ‖output_t‖ (forget_bias experiment;
    carry_dominates_*: per t, carry > output; c_ratio_*: median contract.log10_ratio of ‖∂L/∂c_t‖ itself, which
    says whether the dominant path vanishes). 'n_without_paths' counts LSTM runs whose file predates the paths."""
    lstm = [r for r in select(runs, experiment=FORGET_BIAS_EXPERIMENT)
            if r.grad_flow is not None and r.grad_flow.c is not None]
    with_paths = [r for r in lstm if r.grad_flow.has_paths and _measured(r.grad_flow.c_carry)]
    data: dict[str, Any] = {"task": None, "seq_len": None, "cell": cell_labels(lstm), "biases": {},
                            "n_without_paths": len(lstm) - len(with_paths)}
    setting = choose_setting(with_paths)
    if setting is None:
        return data
    data["task"], data["seq_len"] = setting
    chosen = select(with_paths, task=setting[0], seq_len=setting[1])
    for fb in sorted({r.get("forget_bias") for r in chosen}, key=sort_key):
        group = [r for r in chosen if r.get("forget_bias") == fb]
        entry: dict[str, Any] = {"init": None, "seeds": sorted((r.get("seed") for r in group), key=sort_key),
                                 "final_step": max(int(r.grad_flow.steps[-1]) for r in group)}
        init = [r for r in group if r.grad_flow.has_init and not np.all(np.isnan(r.grad_flow.c_carry[0]))]
        if init:
            entry["init"] = {"carry": median_curve([r.grad_flow.c_carry[0] for r in init]),
                             "output": median_curve([r.grad_flow.c_output[0] for r in init])}
        entry["final"] = {"carry": median_curve([_measured(r.grad_flow.c_carry)[-1] for r in group]),
                          "output": median_curve([_measured(r.grad_flow.c_output)[-1] for r in group])}
        entry["c_ratio_init"] = median_log10_ratio(init, "c", INIT)
        entry["c_ratio_final"] = median_log10_ratio(group, "c", FINAL)
        for when in ("init", "final"):
            paths = entry[when]
            entry[f"carry_dominates_{when}"] = paths["carry"] > paths["output"] if paths else None
        data["biases"][fb] = entry
    return data
