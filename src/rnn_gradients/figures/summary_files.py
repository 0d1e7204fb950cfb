"""summary.csv (one row per run), summary.md (headline tables) and summary_numbers.json (the same numbers
as a dict, for tests and the README), from rnn_gradients.analysis.tables. JSON numbers are finite or
null; the Markdown says "n/a".

(The numbers file is not called like a run's summary file: a folder holding one is a run folder to the
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

from rnn_gradients import contract
from rnn_gradients.analysis import EXCURSION_LOSS_MULTIPLE, WARMUP_FRACTION, Run, headline_numbers, run_rows
from rnn_gradients.analysis.tables import json_safe
from rnn_gradients.figures.style import WRITTEN, fmt_num
from rnn_gradients.io_utils import write_text_atomic

CSV_FILE, MARKDOWN_FILE, NUMBERS_FILE = contract.FIGURES_CSV, contract.FIGURES_MARKDOWN, contract.FIGURES_NUMBERS
# How every number over seeds is aggregated (summary.md's header): one statistic per number, the one the figures'
# legends and captions print too (the log10 ratios: analysis.flow_ratios).
AGGREGATION_RATIO = "the median over seeds of each seed's log10 ratio (not the ratio of the median curve)"
AGGREGATION = ("Aggregation: a number over seeds is the median of the per-seed values (with the min–max where shown; "
               "counts and fractions say so); a log10 gradient ratio is "
               f"{AGGREGATION_RATIO}, in these tables and in the figures' legends alike.")
# What each status that keeps a run out of the tables means (summary.md; the figures' one-line error).
UNFINISHED_MEANING = {
    contract.FAILED: "the job raised (the reason is in its summary)",
    contract.INTERRUPTED: "stopped by a signal after saving a checkpoint (resume with resume=true)",
    contract.CANCELLED: "not run: hydra.launcher.fail_fast stopped the sweep after a failed job (resume with resume=true)",
    contract.MISSING: f"no {contract.SUMMARY_FILE}: killed, or still running",
    contract.UNREADABLE: f"a {contract.SUMMARY_FILE} that is not a JSON object with a known status",
}


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


def _fb(value: Any) -> str:
    return "–" if value is None else fmt_num(value)


def _ratio(value: Any) -> str:
    if value is not None and float(value) == float("-inf"):
        return "n/a (underflow)"
    return fmt_num(value, 3)


def _paths(paths: Sequence[str]) -> str:
    return ", ".join(f"`{p}`" for p in paths)


def _status_section(numbers: dict[str, Any]) -> list[str]:
    header = " | ".join(contract.STATUSES)
    lines = ["## Runs by status", "",
             "Only finished runs (completed or diverged) enter the tables below and the figures. The others: "
             + "; ".join(f"{s} = {UNFINISHED_MEANING[s]}" for s in contract.UNFINISHED) + ".", "",
             f"| experiment | {header} | other | total |",
             "|---|" + "---:|" * (len(contract.STATUSES) + 2)]
    for experiment, c in numbers["counts"].items():
        other = c["total"] - sum(c.get(s, 0) for s in contract.STATUSES)
        name = f"**{experiment}**" if experiment == "all" else experiment
        cells = " | ".join(str(c.get(s, 0)) for s in contract.STATUSES)
        lines.append(f"| {name} | {cells} | {other} | {c['total']} |")
    for status in contract.UNFINISHED:
        if numbers[status]:
            lines += ["", f"{status.capitalize()} jobs: " + _paths(numbers[status])]
    return lines


def _final_loss_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Final validation loss", "",
            "Median over seeds of the final `val_normalized_loss` (validation loss / memoryless baseline: 1 = "
            f"no memory, 0 = solved) and `val_accuracy` from {contract.SUMMARY_FILE}, with the min–max over seeds. "
            "Diverged runs count with the loss they ended on; a missing (null) loss is left out.", "",
            "| experiment | arm | forget bias | task | T | n seeds | median val loss / baseline | min–max | "
            "median val accuracy |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['experiment'] or '(none)'} | {r['arm']} | {_fb(r['forget_bias'])} | {r['task']} | "
            f"{r['seq_len']} | {r['n_seeds']} | {fmt_num(r['median_val_normalized_loss'], 4)} | "
            f"{fmt_num(r['min_val_normalized_loss'])}–{fmt_num(r['max_val_normalized_loss'])} | "
            f"{fmt_num(r['median_val_accuracy'])} |"
            for r in numbers["final_loss"]]
    return head + (rows or ["| n/a | | | | | 0 | n/a | n/a | n/a |"])


def _grad_flow_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Gradient flow through time", "",
            "log10(‖∂L/∂x_0‖ / ‖∂L/∂x_{T-1}‖) for x = h (hidden state) and c (LSTM cell state) on the probe batch "
            f"({contract.GRAD_FLOW_FILE}), {AGGREGATION_RATIO}; init = training step 0, end = last measurement. Far "
            "below 0: the gradient vanishes going back in time; above 0: it grows. n/a = not measured, or the first "
            "norm underflowed to 0.", "",
            "| experiment | arm | forget bias | task | T | n seeds | h init | h end | c init | c end | end step |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['experiment'] or '(none)'} | {r['arm']} | {_fb(r['forget_bias'])} | {r['task']} | "
            f"{r['seq_len']} | {r['n_seeds']} | {_ratio(r['log10_ratio_h_init'])} | "
            f"{_ratio(r['log10_ratio_h_final'])} | {_ratio(r['log10_ratio_c_init'])} | "
            f"{_ratio(r['log10_ratio_c_final'])} | {r['final_step']} |"
            for r in numbers["grad_flow"]]
    return head + (rows or ["| n/a | | | | | 0 | n/a | n/a | n/a | n/a | |"])


def _split(value: Any) -> str:
    if value is not None and math.isinf(float(value)):
        return "carry 0" if float(value) < 0 else "output 0"
    return fmt_num(value, 3)


def _gradient_paths_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Cell-state gradient paths", "",
            "The LSTM's ∂L/∂c_t = carry (f_{t+1} ⊙ ∂L/∂c_{t+1}, through the next cell state) + output "
            "(o_t ⊙ (1 − tanh²(c_t)) ⊙ ∂L/∂h_t, through h_t), on the probe batch "
            f"({contract.GRAD_FLOW_FILE}); log10(‖carry‖/‖output‖) at t=0 at initialization (step 0), median and "
            "min–max over seeds, per forget bias of the forget_bias experiment. Above 0 the carry path dominates "
            "(the gradient travels back along the cell state, scaled only by the forget gates: preserved when "
            "they are near 1, the vanishing cured); below 0 the output path does (through h_t and W_hh, as in "
            "an RNN). Whether ‖∂L/∂c_t‖ vanishes: the gradient-flow table's c columns.", "",
            "| task | T | forget bias | n seeds | log10(‖carry‖/‖output‖) at t=0, init | min–max |",
            "|---|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['task']} | {r['seq_len']} | {_fb(r['forget_bias'])} | {r['n_seeds']} | "
            f"{_split(r['log10_carry_over_output_t0_init'])} | "
            f"{_split(r['min_log10_carry_over_output_t0_init'])}–"
            f"{_split(r['max_log10_carry_over_output_t0_init'])} |"
            for r in numbers["gradient_paths"]]
    return head + (rows or ["| n/a | | | 0 | n/a | n/a |"])


def _divergence_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Divergence (exploding experiment)", "",
            f"Diverged: {contract.SUMMARY_FILE} says diverged, or a non-finite loss. Loss excursion: the largest "
            f"{contract.TRAIN_LOSS} after the first {WARMUP_FRACTION:.0%} of the steps exceeds "
            f"{EXCURSION_LOSS_MULTIPLE:g} × the baseline loss. Fraction = (diverged or loss excursion) / finished runs; "
            "'not finished' = jobs failed, interrupted, cancelled, missing or unreadable, left out of the fraction.", "",
            "| optimizer | clipping | lr | n runs | diverged | loss excursion | diverged or loss excursion | fraction | "
            "median val loss / baseline | not finished |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['optimizer']} | {r['clipping']} | {fmt_num(r['lr'])} | {r['n_runs']} | {r['n_diverged']} | "
            f"{r['n_loss_excursion']} | {r['n_diverged_or_excursion']} | {fmt_num(r['fraction'], 2)} | "
            f"{fmt_num(r['median_val_normalized_loss'])} | {r['n_not_finished']} |"
            for r in numbers["divergence"]]
    return head + (rows or ["| n/a | | | 0 | | | | n/a | n/a | |"])


def _rise(value: Any) -> str:
    if value is not None and float(value) == float("inf"):
        return "non-finite"
    return f"+{fmt_num(value, 3)}" if value is not None and 0 < float(value) < float("inf") else fmt_num(value, 3)


def _loss_cliff_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Loss cliff (exploding experiment)", "",
            f"From {contract.LOSS_CLIFF_FILE}, the slice of the batch loss along the update direction, L(θ − α·g/‖g‖), "
            "at the step of each run's largest pre-clip gradient norm ‖g‖: how far up the wall the step the optimizer "
            "took went, log10(loss after the step / loss at α = 1e-4), median over seeds (non-finite: the median "
            "step landed on a non-finite loss), with the median ‖g‖ and the median length of the step taken ‖Δθ‖. "
            "Then the first uphill step (the first update that multiplied its batch loss, before a run blows up): "
            "how many seeds had one, its median step number and the same log10 rise for it.", "",
            "| optimizer | clipping | lr | n seeds | median log10(loss after step / loss at α=1e-4) | "
            "non-finite after step | median ‖g‖ | median ‖Δθ‖ | seeds with an uphill step | first uphill step | "
            "its log10 rise |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['optimizer']} | {r['clipping']} | {fmt_num(r['lr'])} | {r['n_seeds']} | "
            f"{_rise(r['median_log10_step_rise'])} | {r['n_nonfinite_after_step']} | "
            f"{fmt_num(r['median_grad_norm'])} | {fmt_num(r['median_step_size'])} | {r['n_first_uphill']} | "
            f"{fmt_num(r['median_first_uphill_step'])} | {_rise(r['median_log10_uphill_rise'])} |"
            for r in numbers["loss_cliff"]]
    return head + (rows or ["| n/a | | | 0 | n/a | | n/a | n/a | 0 | n/a | n/a |"])


def _step(value: Any, never: str = "never") -> str:
    """A step number; `never` for +inf (never reached) or None where the step is the answer to 'when'."""
    if value is None:
        return never
    return never if math.isinf(float(value)) else str(int(value))


def _cures_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Cures (cures experiment)", "",
            "Per task at one sequence length (T=100 where run, else the longest) and cell: the final "
            f"`val_normalized_loss` of {contract.SUMMARY_FILE} (1 = memoryless baseline), median and per seed (seed "
            "order); the median `val_accuracy`; the first logged step whose validation loss fell below 0.9 × the "
            "baseline, median over seeds (never: the median seed never got there), with how many seeds did; and "
            f"log10(‖∂L/∂h_0‖ / ‖∂L/∂h_{{T-1}}‖) of {contract.GRAD_FLOW_FILE}, the median of the seeds' ratios, at init "
            "(step 0) and after training (as in the gradient-flow table).", "",
            "| task | T | cell | n seeds | median val loss / baseline | per seed | median val accuracy | "
            "first step < 0.9 × baseline | seeds below | h init | h end |",
            "|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['task']} | {r['seq_len']} | {r['arm']} | {r['n_seeds']} | "
            f"{fmt_num(r['median_val_normalized_loss'], 4)} | {', '.join(fmt_num(v) for v in r['val_normalized_loss'])} | "
            f"{fmt_num(r['median_val_accuracy'])} | {_step(r['median_first_step_below'])} | "
            f"{r['n_below']}/{r['n_seeds']} | {_ratio(r['median_log10_ratio_h_init'])} | "
            f"{_ratio(r['median_log10_ratio_h_final'])} |"
            for r in numbers["cures"]]
    return head + (rows or ["| n/a | | | 0 | n/a | | n/a | n/a | | n/a | n/a |"])


def _spectrum_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Recurrent spectrum", "",
            f"From {contract.SPECTRUM_FILE}: σ_max and the spectral radius of each recurrent matrix (one per gate "
            "block), beside Pascanu et al.'s (2013) bound 1/γ (1 for tanh and ReLU blocks, 4 for sigmoid gates): "
            "σ_max < 1/γ for every block guarantees that the gradient vanishes back in time; σ_max > 1/γ for some "
            "block is necessary for it to explode. Cures experiment, per task (at the T of the cures table) and "
            "cell: medians over seeds at init (step 0) and at the last measurement; for a gated cell also the max "
            "over its blocks, whose last column counts the seeds with every block below its 1/γ at init.", "",
            "| task | T | cell | block | 1/γ | n seeds | σ_max init | σ_max end | radius init | "
            "σ_max < 1/γ at init (seeds) | end step |",
            "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['task']} | {r['seq_len']} | {r['arm']} | {r['block'] or 'max over blocks'} | {_fb(r['bound'])} | "
            f"{r['n_seeds']} | {fmt_num(r['sigma_init'])} | {fmt_num(r['sigma_end'])} | {fmt_num(r['radius_init'])} | "
            f"{'' if r['block'] else 'all blocks: '}{r['n_below_bound_init']}/{r['n_init']} | {r['end_step']} |"
            for r in numbers["spectrum"]["cures"]]
    lines = head + (rows or ["| n/a | | | | | 0 | n/a | n/a | n/a | | |"])
    lines += ["", "Exploding experiment: the unclipped run that blows up (SGD first, a diverged run first, the largest "
              "lr) and its norm-clipped twin (same lr and seed): σ_max per block at step 0, at the first uphill step "
              f"({contract.LOSS_CLIFF_FILE}: the first update that multiplied its batch loss) and at the divergence "
              f"({contract.SUMMARY_FILE} diverged_at_step), each the last measurement at or before it; and the first "
              "measured step where σ_max exceeds 1/γ (the 'all blocks' row: the max of σ_max, and the first step any "
              "block does). Step s = after s updates.", "",
              "| optimizer | lr | seed | clipping | block | 1/γ | σ_max step 0 | first uphill step | σ_max there | "
              "diverged at | σ_max there | first step σ_max > 1/γ |",
              "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['optimizer']} | {fmt_num(r['lr'])} | {r['seed']} | {r['clipping']} | {r['block'] or 'all blocks'} | "
            f"{_fb(r['bound'])} | {fmt_num(r['sigma_init'])} | {_step(r['first_uphill_step'], 'none')} | "
            f"{fmt_num(r['sigma_first_uphill'])} | {_step(r['diverged_at_step'], 'no')} | "
            f"{fmt_num(r['sigma_divergence'])} | {_step(r['first_above_bound'])} |"
            for r in numbers["spectrum"]["exploding"]]
    return lines + (rows or ["| n/a | | | | | | n/a | | n/a | | n/a | |"])


def _eval_section(numbers: dict[str, Any]) -> list[str]:
    head = ["## Evaluated at other lengths (python -m rnn_gradients.evaluate)", "",
            f"From each run's {contract.EVAL_FILE}: its final checkpoint on its own validation set at each evaluated T, "
            "median over seeds (normalized loss with the min–max), and the float64 probe's log10 gradient ratio on "
            "the trained weights at that T. Only sweeps that were evaluated appear.", "",
            "| experiment | arm | task | trained T | T | n seeds | median val loss / baseline | min–max | median metric | "
            "log10 ratio h | log10 ratio c |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [f"| {r['experiment'] or '(none)'} | {r['arm']} | {r['task']} | {r['trained_seq_len']} | {r['seq_len']} | "
            f"{r['n_seeds']} | {fmt_num(r['median_normalized_loss'], 4)} | {fmt_num(r['min_normalized_loss'])}–"
            f"{fmt_num(r['max_normalized_loss'])} | {fmt_num(r['median_metric'])} | {fmt_num(r['median_log10_ratio_h'])} | "
            f"{fmt_num(r['median_log10_ratio_c'])} |" for r in numbers["eval"]]
    return head + (rows or ["| n/a | | | | | 0 | n/a | n/a | n/a | n/a | n/a |"])


def markdown(numbers: dict[str, Any]) -> str:
    lines = ["# Sweep summary", "", AGGREGATION, ""]
    if numbers["sources"]:
        lines += ["Runs read from: " + _paths(numbers["sources"]), ""]
    lines += _status_section(numbers) + [""] + _final_loss_section(numbers) + [""] + _grad_flow_section(numbers)
    lines += [""] + _gradient_paths_section(numbers) + [""] + _divergence_section(numbers)
    lines += [""] + _loss_cliff_section(numbers) + [""] + _cures_section(numbers) + [""] + _spectrum_section(numbers)
    lines += [""] + _eval_section(numbers)
    if numbers["figures"]:
        lines += ["", "## Figures", ""]
        for name, info in numbers["figures"].items():
            if info["status"] == WRITTEN:
                lines.append(f"- **{name}** (`{name}.png`, `{name}.pdf`): {info.get('caption', '')}")
            else:
                lines.append(f"- **{name}**: {info['status']} ({info.get('reason', '')})")
    if numbers["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in numbers["problems"]]
    return "\n".join(lines) + "\n"


def write_tables(runs: Sequence[Run], out_dir: Path, figures: dict[str, dict[str, Any]] | None = None,
                 sources: Sequence[str] = ()) -> dict[str, Any]:
    """Write summary.csv, summary.md and summary_numbers.json into out_dir; returns the numbers (JSON-safe)."""
    out_dir = Path(out_dir)
    write_csv(run_rows(runs), out_dir / CSV_FILE)
    raw = headline_numbers(runs, figures, sources)
    write_text_atomic(out_dir / MARKDOWN_FILE, markdown(raw))
    numbers = json_safe(raw)
    write_text_atomic(out_dir / NUMBERS_FILE, json.dumps(numbers, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return numbers
