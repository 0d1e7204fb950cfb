"""summary.csv (one row per run), summary.md (headline tables) and summary_numbers.json (the same
numbers as a dict, for tests and the README). JSON numbers are finite or null; the Markdown says "n/a".

(The numbers file is not called summary.json: a folder holding a summary.json is a run folder to the
run discovery, and the figures' output folder must never look like one.)
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients.figures.curves import summarize_values
from rnn_gradients.figures.divergence import divergence_outcome, divergence_table
from rnn_gradients.figures.grad_norms import CLIPPED_TAG, PRECLIP_TAG, detect_spikes
from rnn_gradients.figures.plots import arm_sort_key, fmt_num
from rnn_gradients.figures.runs import (
    FAILED_OR_RUNNING, STATUS_ORDER, SUMMARY_FIELDS, UNREADABLE, Run, log10_ratio, sort_key, status_counts,
)
from rnn_gradients.io_utils import write_text_atomic

NUMBERS_FILE = "summary_numbers.json"
DERIVED_FIELDS = (
    "n_event_files", "n_unreadable_event_files", "last_logged_step",
    "log10_ratio_h_init", "log10_ratio_h_final", "log10_ratio_c_init", "log10_ratio_c_final", "grad_flow_final_step",
    "max_grad_norm_preclip", "median_grad_norm_preclip", "n_grad_norm_spikes", "clipped_fraction",
    "nonfinite_loss", "max_train_loss_after_warmup", "spiked", "diverged_or_spiked",
)
STATUS_COLUMNS = STATUS_ORDER


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def derived_numbers(run: Run) -> dict[str, Any]:
    """The per-run numbers added to summary.csv (see DERIVED_FIELDS)."""
    row: dict[str, Any] = dict.fromkeys(DERIVED_FIELDS)
    events = run.events
    if events is not None:
        row["n_event_files"] = len(events.files)
        row["n_unreadable_event_files"] = len(events.unreadable)
        row["last_logged_step"] = events.last_step
        series = events.scalar(PRECLIP_TAG)
        if series is not None and len(series[1]):
            values = series[1]
            ok = values[np.isfinite(values)]
            row["max_grad_norm_preclip"] = float(np.max(values))
            row["median_grad_norm_preclip"] = float(np.median(ok)) if ok.size else None
            row["n_grad_norm_spikes"] = int(detect_spikes(values).sum())
        clipped = events.scalar(CLIPPED_TAG)
        if clipped is not None and len(clipped[1]):
            row["clipped_fraction"] = float(np.nanmean(clipped[1]))
    gf = run.grad_flow
    if gf is not None:
        for q in ("h", "c"):
            matrix = getattr(gf, q)
            if matrix is None:
                continue
            row[f"log10_ratio_{q}_init"] = log10_ratio(matrix[0]) if gf.has_init else None
            row[f"log10_ratio_{q}_final"] = log10_ratio(matrix[-1])
        row["grad_flow_final_step"] = int(gf.steps[-1])
    if run.usable:
        outcome = divergence_outcome(run)
        for key in ("nonfinite_loss", "max_train_loss_after_warmup", "spiked", "diverged_or_spiked"):
            row[key] = outcome[key]
    return row


def run_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run: run_dir, status, every summary.json field (classification fields from the Hydra
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


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    write_text_atomic(path, buffer.getvalue())


def _median(values: Sequence[Any]) -> float | None:
    """Median of the non-missing values (None/NaN are missing; -inf from an underflow is kept)."""
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else None


def final_loss_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Median final val_normalized_loss and val_accuracy over seeds per (experiment, arm, forget bias, task, T).
    The exploding experiment has its own table (divergence_table)."""
    usable = [r for r in runs if r.usable and r.experiment != "exploding"]

    def key(r: Run) -> tuple:
        return (r.experiment, r.get("arm"), r.get("forget_bias"), r.get("task"), r.get("seq_len"))

    rows = []
    for k in sorted({key(r) for r in usable}, key=lambda k: (sort_key(k[0]), arm_sort_key(k[1]), sort_key(k[2]),
                                                              sort_key(k[3]), sort_key(k[4]))):
        group = [r for r in usable if key(r) == k]
        loss = summarize_values([r.summary.get("val_normalized_loss") for r in group])
        acc = summarize_values([r.summary.get("val_accuracy") for r in group])
        rows.append({
            "experiment": k[0], "arm": k[1], "forget_bias": k[2], "task": k[3], "seq_len": k[4],
            "n_seeds": len(group), "n_diverged": sum(r.status == "diverged" for r in group),
            "median_val_normalized_loss": loss["median"], "min_val_normalized_loss": loss["min"],
            "max_val_normalized_loss": loss["max"], "median_val_accuracy": acc["median"],
        })
    return rows


def grad_flow_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Median over seeds of log10(norm[t=0] / norm[t=T-1]) of h and c, at init and at the last measurement,
    per (experiment, arm, forget bias, task, T) (exploding runs left out)."""
    chosen = [r for r in runs if r.usable and r.grad_flow is not None and r.experiment != "exploding"]

    def key(r: Run) -> tuple:
        return (r.experiment, r.get("arm"), r.get("forget_bias"), r.get("task"), r.get("seq_len"))

    rows = []
    for k in sorted({key(r) for r in chosen}, key=lambda k: (sort_key(k[0]), arm_sort_key(k[1]), sort_key(k[2]),
                                                              sort_key(k[3]), sort_key(k[4]))):
        group = [r for r in chosen if key(r) == k]
        row = {"experiment": k[0], "arm": k[1], "forget_bias": k[2], "task": k[3], "seq_len": k[4], "n_seeds": len(group)}
        for q in ("h", "c"):
            mats = [(getattr(r.grad_flow, q), r.grad_flow) for r in group if getattr(r.grad_flow, q) is not None]
            row[f"log10_ratio_{q}_init"] = _median([log10_ratio(m[0]) for m, gf in mats if gf.has_init]) if mats else None
            row[f"log10_ratio_{q}_final"] = _median([log10_ratio(m[-1]) for m, _ in mats]) if mats else None
        row["final_step"] = max(int(r.grad_flow.steps[-1]) for r in group)
        rows.append(row)
    return rows


def headline_numbers(runs: Sequence[Run], figures: dict[str, dict[str, Any]] | None = None,
                     sources: Sequence[str] = ()) -> dict[str, Any]:
    """Every table as lists of dicts. Values may be non-finite here (-inf = a norm underflowed to 0);
    `write_tables` turns them into null for the JSON file."""
    numbers = {
        "sources": [str(s) for s in sources],
        "n_runs": len(runs),
        "counts": status_counts(runs),
        "not_finished": [str(r.path) for r in runs if r.status == FAILED_OR_RUNNING],
        "unreadable": [str(r.path) for r in runs if r.status == UNREADABLE],
        "failed": [str(r.path) for r in runs if r.summary is not None and not r.usable],
        "final_loss": final_loss_table(runs),
        "grad_flow": grad_flow_table(runs),
        "divergence": divergence_table(runs),
        "figures": {name: {k: v for k, v in info.items() if k != "data"} for name, info in (figures or {}).items()},
        "problems": [p for r in runs for p in r.problems],
    }
    return numbers


def _fb(value: Any) -> str:
    return "–" if value is None else fmt_num(value)


def _ratio(value: Any) -> str:
    if value is not None and float(value) == float("-inf"):
        return "n/a (underflow)"
    return fmt_num(value, 3)


def markdown(numbers: dict[str, Any]) -> str:
    lines = ["# Sweep summary", ""]
    if numbers["sources"]:
        lines += ["Runs read from: " + ", ".join(f"`{s}`" for s in numbers["sources"]), ""]
    lines += ["## Runs by status", "",
              "Only finished runs (completed or diverged) enter the tables below and the figures.", "",
              "| experiment | completed | diverged | failed | interrupted | failed or running (no summary.json) | "
              "unreadable | other | total |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for experiment, c in numbers["counts"].items():
        other = c["total"] - sum(c.get(s, 0) for s in STATUS_COLUMNS)
        name = f"**{experiment}**" if experiment == "all" else experiment
        cells = " | ".join(str(c.get(s, 0)) for s in STATUS_COLUMNS)
        lines.append(f"| {name} | {cells} | {other} | {c['total']} |")
    if numbers["not_finished"]:
        lines += ["", "Jobs without summary.json (failed or still running): "
                  + ", ".join(f"`{p}`" for p in numbers["not_finished"])]
    if numbers["failed"]:
        lines += ["", "Failed or interrupted jobs: " + ", ".join(f"`{p}`" for p in numbers["failed"])]
    if numbers["unreadable"]:
        lines += ["", "Unreadable jobs: " + ", ".join(f"`{p}`" for p in numbers["unreadable"])]

    lines += ["", "## Final validation loss", "",
              "Median over seeds of the final `val_normalized_loss` (validation loss / memoryless baseline: 1 = "
              "no memory, 0 = solved) and `val_accuracy` from summary.json, with the min–max over seeds. Diverged "
              "runs count with the loss they ended on; a missing (null) loss is left out.", "",
              "| experiment | arm | forget bias | task | T | n seeds | median val loss / baseline | min–max | "
              "median val accuracy |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in numbers["final_loss"]:
        lines.append(f"| {r['experiment'] or '(none)'} | {r['arm']} | {_fb(r['forget_bias'])} | {r['task']} | "
                     f"{r['seq_len']} | {r['n_seeds']} | {fmt_num(r['median_val_normalized_loss'], 4)} | "
                     f"{fmt_num(r['min_val_normalized_loss'])}–{fmt_num(r['max_val_normalized_loss'])} | "
                     f"{fmt_num(r['median_val_accuracy'])} |")
    if not numbers["final_loss"]:
        lines.append("| n/a | | | | | 0 | n/a | n/a | n/a |")

    lines += ["", "## Gradient flow through time", "",
              "log10(‖∂L/∂x_0‖ / ‖∂L/∂x_{T-1}‖) for x = h (hidden state) and c (LSTM cell state) on the probe batch "
              "(grad_flow.npz), median over seeds; init = training step 0, end = last measurement. Far below 0: the "
              "gradient vanishes going back in time; above 0: it grows. n/a = not measured, or the first norm "
              "underflowed to 0.", "",
              "| experiment | arm | forget bias | task | T | n seeds | h init | h end | c init | c end | end step |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in numbers["grad_flow"]:
        lines.append(f"| {r['experiment'] or '(none)'} | {r['arm']} | {_fb(r['forget_bias'])} | {r['task']} | "
                     f"{r['seq_len']} | {r['n_seeds']} | {_ratio(r['log10_ratio_h_init'])} | "
                     f"{_ratio(r['log10_ratio_h_final'])} | {_ratio(r['log10_ratio_c_init'])} | "
                     f"{_ratio(r['log10_ratio_c_final'])} | {r['final_step']} |")
    if not numbers["grad_flow"]:
        lines.append("| n/a | | | | | 0 | n/a | n/a | n/a | n/a | |")

    from rnn_gradients.figures.divergence import SPIKE_LOSS_MULTIPLE, WARMUP_FRACTION

    lines += ["", "## Divergence (exploding experiment)", "",
              f"Diverged: summary.json says diverged, or a non-finite loss. Spiked: the largest train/loss after the "
              f"first {WARMUP_FRACTION:.0%} of the steps exceeds {SPIKE_LOSS_MULTIPLE:g} × the baseline loss. "
              "Fraction = (diverged or spiked) / finished runs; 'not finished' = jobs without summary.json, failed or "
              "interrupted, left out of the fraction.", "",
              "| optimizer | clipping | lr | n runs | diverged | spiked | diverged or spiked | fraction | "
              "median val loss / baseline | not finished |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in numbers["divergence"]:
        lines.append(f"| {r['optimizer']} | {r['clipping']} | {fmt_num(r['lr'])} | {r['n_runs']} | {r['n_diverged']} | "
                     f"{r['n_spiked']} | {r['n_diverged_or_spiked']} | {fmt_num(r['fraction'], 2)} | "
                     f"{fmt_num(r['median_val_normalized_loss'])} | {r['n_not_finished']} |")
    if not numbers["divergence"]:
        lines.append("| n/a | | | 0 | | | | n/a | n/a | |")

    if numbers["figures"]:
        lines += ["", "## Figures", ""]
        for name, info in numbers["figures"].items():
            if info["status"] == "written":
                lines.append(f"- **{name}** (`{name}.png`, `{name}.pdf`): {info.get('caption', '')}")
            else:
                lines.append(f"- **{name}**: {info['status']} ({info.get('reason', '')})")
    if numbers["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in numbers["problems"]]
    return "\n".join(lines) + "\n"


def write_tables(runs: Sequence[Run], out_dir: Path, figures: dict[str, dict[str, Any]] | None = None,
                 sources: Sequence[str] = ()) -> dict[str, Any]:
    """Write summary.csv, summary.md and summary_numbers.json into out_dir; returns the numbers."""
    out_dir = Path(out_dir)
    write_csv(run_rows(runs), out_dir / "summary.csv")
    raw = headline_numbers(runs, figures, sources)
    write_text_atomic(out_dir / "summary.md", markdown(raw))
    numbers = _clean(raw)
    write_text_atomic(out_dir / NUMBERS_FILE, json.dumps(numbers, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return numbers
