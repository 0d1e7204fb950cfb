"""The numbers of the summary tables: one row per run (the CSV), the final-loss, gradient-flow,
cell-state gradient-path and loss-cliff tables over seeds, the cures and recurrent-spectrum tables
(cures_data, spectrum_data), and the whole dict that figures/summary_files writes as JSON and Markdown.

Values may be non-finite here (-inf = a norm underflowed to 0); `json_safe` turns them into null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis.cliff_data import cliff_runs
from rnn_gradients.analysis.cures_data import cures_table
from rnn_gradients.analysis.divergence_rules import divergence_outcome, divergence_table
from rnn_gradients.analysis.eval_data import length_table
from rnn_gradients.analysis.flow_ratios import FINAL, INIT, median_log10_ratio, run_log10_ratio
from rnn_gradients.analysis.run_folder import SUMMARY_FIELDS, Run, status_counts
from rnn_gradients.analysis.seed_stats import median_of, summarize_values
from rnn_gradients.analysis.selection import arm_sort_key, select, sort_key
from rnn_gradients.analysis.spectrum_data import spectrum_tables
from rnn_gradients.analysis.spikes import detect_spikes

# what the tables read (the cures table: the validation loss, for its first step below 0.9 × the baseline)
TABLE_TAGS = frozenset({contract.PRECLIP_NORM, contract.CLIPPED, contract.TRAIN_LOSS, contract.VAL_NORMALIZED_LOSS})
DERIVED_FIELDS = (
    "n_event_files", "n_unreadable_event_files", "last_logged_step",
    "log10_ratio_h_init", "log10_ratio_h_final", "log10_ratio_c_init", "log10_ratio_c_final", "grad_flow_final_step",
    "max_grad_norm_preclip", "median_grad_norm_preclip", "n_grad_norm_spikes", "clipped_fraction",
    "nonfinite_loss", "max_train_loss_after_warmup", "loss_excursion", "diverged_or_excursion",
)


def json_safe(value: Any) -> Any:
    """NumPy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def derived_numbers(run: Run) -> dict[str, Any]:
    """The per-run numbers added to the CSV (see DERIVED_FIELDS)."""
    row: dict[str, Any] = dict.fromkeys(DERIVED_FIELDS)
    events = run.events
    if events is not None:
        row["n_event_files"] = len(events.files)
        row["n_unreadable_event_files"] = len(events.unreadable)
        row["last_logged_step"] = events.last_step
        series = events.scalar(contract.PRECLIP_NORM)
        if series is not None and len(series[1]):
            values = series[1]
            ok = values[np.isfinite(values)]
            row["max_grad_norm_preclip"] = float(np.max(values))
            row["median_grad_norm_preclip"] = float(np.median(ok)) if ok.size else None
            row["n_grad_norm_spikes"] = int(detect_spikes(values).sum())
        clipped = events.scalar(contract.CLIPPED)
        if clipped is not None and len(clipped[1]):
            row["clipped_fraction"] = float(np.nanmean(clipped[1]))
    gf = run.grad_flow
    if gf is not None:
        for q in ("h", "c"):
            for when in (INIT, FINAL):
                row[f"log10_ratio_{q}_{when}"] = run_log10_ratio(run, q, when)
        row["grad_flow_final_step"] = int(gf.steps[-1])
    if run.usable:
        outcome = divergence_outcome(run)
        for key in ("nonfinite_loss", "max_train_loss_after_warmup", "loss_excursion", "diverged_or_excursion"):
            row[key] = outcome[key]
    return row


def run_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run: run_dir, status, every summary field (classification fields from the Hydra
    config when there is no summary), has_summary, max_steps, then the derived numbers."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run_dir": str(run.path), "status": run.status, "has_summary": run.summary is not None}
        summary = run.summary or {}
        for key in SUMMARY_FIELDS:
            if key == "status":
                continue
            row[key] = summary[key] if key in summary else run.info.get(key)
        for key in sorted(set(summary) - set(SUMMARY_FIELDS)):
            row[key] = summary[key]
        row["max_steps"] = run.info.get("max_steps")
        row.update(derived_numbers(run))
        row["problems"] = " | ".join(run.problems)
        rows.append(row)
    return rows


def _setting(r: Run) -> tuple:
    return (r.experiment, r.get("arm"), r.get("forget_bias"), r.get("task"), r.get("seq_len"))


def _settings(runs: Sequence[Run]) -> list[tuple]:
    return sorted({_setting(r) for r in runs}, key=lambda k: (sort_key(k[0]), arm_sort_key(k[1]), sort_key(k[2]),
                                                              sort_key(k[3]), sort_key(k[4])))


def final_loss_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Median final val_normalized_loss and val_accuracy over seeds per (experiment, arm, forget bias, task, T).
    The exploding experiment has its own table (divergence_table)."""
    usable = [r for r in runs if r.usable and r.experiment != "exploding"]
    rows = []
    for k in _settings(usable):
        group = [r for r in usable if _setting(r) == k]
        loss = summarize_values([r.summary.get("val_normalized_loss") for r in group])
        acc = summarize_values([r.summary.get("val_accuracy") for r in group])
        rows.append({
            "experiment": k[0], "arm": k[1], "forget_bias": k[2], "task": k[3], "seq_len": k[4],
            "n_seeds": len(group), "n_diverged": sum(r.status == contract.DIVERGED for r in group),
            "median_val_normalized_loss": loss["median"], "min_val_normalized_loss": loss["min"],
            "max_val_normalized_loss": loss["max"], "median_val_accuracy": acc["median"],
        })
    return rows


def grad_flow_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Median over seeds of log10(norm[t=0] / norm[t=T-1]) of h and c, at init and at the last measurement,
    per (experiment, arm, forget bias, task, T) (exploding runs left out)."""
    chosen = [r for r in runs if r.usable and r.grad_flow is not None and r.experiment != "exploding"]
    rows = []
    for k in _settings(chosen):
        group = [r for r in chosen if _setting(r) == k]
        row = {"experiment": k[0], "arm": k[1], "forget_bias": k[2], "task": k[3], "seq_len": k[4], "n_seeds": len(group)}
        for q in ("h", "c"):
            for when in (INIT, FINAL):
                row[f"log10_ratio_{q}_{when}"] = median_log10_ratio(group, q, when)
        row["final_step"] = max(int(r.grad_flow.steps[-1]) for r in group)
        rows.append(row)
    return rows


def path_split(carry: float, output: float) -> float:
    """log10(‖carry‖/‖output‖) of one t: > 0 the carry path (through c_{t+1}) dominates, < 0 the output
    path (through h_t); ±inf when one of them is exactly 0, NaN when both are (or one is not finite)."""
    carry, output = float(carry), float(output)
    if not (math.isfinite(carry) and math.isfinite(output)) or carry == output == 0:
        return float("nan")
    if carry == 0 or output == 0:
        return float("-inf") if carry == 0 else float("inf")
    return math.log10(carry / output)


def gradient_paths_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per (task, T, forget bias) of the forget_bias experiment: the path split of ∂L/∂c_0 at initialization,
    log10(‖carry‖/‖output‖) at t=0, step 0 (`path_split`), median and min–max over seeds."""
    chosen = [r for r in select(runs, experiment="forget_bias")
              if r.grad_flow is not None and r.grad_flow.has_paths and r.grad_flow.has_init]
    keys = sorted({(r.get("task"), r.get("seq_len"), r.get("forget_bias")) for r in chosen},
                  key=lambda k: tuple(map(sort_key, k)))
    rows = []
    for task, seq_len, fb in keys:
        group = select(chosen, task=task, seq_len=seq_len, forget_bias=fb)
        split = summarize_values([path_split(r.grad_flow.c_carry[0, 0], r.grad_flow.c_output[0, 0]) for r in group])
        rows.append({"task": task, "seq_len": seq_len, "forget_bias": fb, "n_seeds": len(group),
                     "log10_carry_over_output_t0_init": split["median"],
                     "min_log10_carry_over_output_t0_init": split["min"],
                     "max_log10_carry_over_output_t0_init": split["max"]})
    return rows


def loss_cliff_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per (optimizer, clipping, lr) of the exploding experiment, from the slice at each run's largest pre-clip
    gradient norm: the median over seeds of log10(loss after the step / loss at the grid's smallest α, 1e-4)
    (CliffSlice.step_rise: how far up the wall the step went; +inf when the loss after it was not finite, which
    the median keeps), how many seeds, how many of them landed on a non-finite loss, and the median ‖g‖; and,
    over the seeds that had one, their first uphill step (the first update that multiplied its batch loss): how
    many seeds, the median step number and the median log10 rise of that step."""
    chosen = cliff_runs(runs)
    keys = sorted({(r.get("optimizer"), r.get("clipping"), r.get("lr")) for r in chosen},
                  key=lambda k: tuple(map(sort_key, k)))
    rows = []
    for optimizer, clipping, lr in keys:
        group = select(chosen, optimizer=optimizer, clipping=clipping, lr=lr)
        slices = [r.loss_cliff.max_norm for r in group]
        uphill = [r.loss_cliff.first_uphill for r in group if r.loss_cliff.first_uphill is not None]
        rises = [s.step_rise for s in slices]
        rows.append({"optimizer": optimizer, "clipping": clipping, "lr": lr, "n_seeds": len(slices),
                     "median_log10_step_rise": median_of(rises),
                     "n_nonfinite_after_step": sum(r == float("inf") for r in rises),
                     "median_grad_norm": median_of([s.grad_norm for s in slices]),
                     "median_step_size": median_of([s.actual_alpha for s in slices]),
                     "n_first_uphill": len(uphill), "median_first_uphill_step": median_of([s.step for s in uphill]),
                     "median_log10_uphill_rise": median_of([s.step_rise for s in uphill])})
    return rows


def headline_numbers(runs: Sequence[Run], figures: dict[str, dict[str, Any]] | None = None,
                     sources: Sequence[str] = ()) -> dict[str, Any]:
    """Every table as lists of dicts, the status counts, the run folders of each unfinished status (keys: the
    contract's status names: failed lists the failed runs only), the figures' outcomes (without their data)
    and every problem."""
    return {
        "sources": [str(s) for s in sources],
        "n_runs": len(runs),
        "counts": status_counts(runs),
        **{status: [str(r.path) for r in runs if r.status == status] for status in contract.UNFINISHED},
        "final_loss": final_loss_table(runs),
        "grad_flow": grad_flow_table(runs),
        "gradient_paths": gradient_paths_table(runs),
        "divergence": divergence_table(runs),
        "loss_cliff": loss_cliff_table(runs),
        "cures": cures_table(runs),
        "spectrum": spectrum_tables(runs),  # {'cures': [...], 'exploding': [...]}
        "eval": length_table(runs),  # python -m rnn_gradients.evaluate's records (eval_data)
        "figures": {name: {k: v for k, v in info.items() if k != "data"} for name, info in (figures or {}).items()},
        "problems": [p for r in runs for p in r.problems],
    }
