"""Figures and tables of the ablation sweeps: `python -m rnn_gradients.figures SWEEP_DIR [...] [--out DIR]`.

Reads the run folders a sweep wrote (summary.json, .hydra/, TensorBoard event files, grad_flow.npz) and
writes PNG + PDF figures, summary.csv, summary.md and summary_numbers.json. See `make_report`.
"""

from __future__ import annotations

from rnn_gradients.figures.cli import main, make_report
from rnn_gradients.figures.runs import Run, discover_run_dirs, load_runs
from rnn_gradients.figures.scalar_toy import scalar_toy_data

__all__ = ["Run", "discover_run_dirs", "load_runs", "main", "make_report", "scalar_toy_data"]
