"""Reading and reducing what sweeps wrote: no drawing (no matplotlib anywhere in this package).

Reading runs: discovery (job folders), run_status (the one reader of a folder's status, classification
and baseline, which the sweep report uses too) with hydra_config (what a job is, from Hydra's record),
event_files (TensorBoard scalars and histograms, none dropped), grad_flow_npz (the raw gradient-flow
curves), loss_cliff_npz (the loss along the update direction, exploding sweep), run_folder (`Run`: one
job folder with its files, status counts), loading (all of it, for every run under some folders).
Reducing them: selection (choosing and ordering runs), seed_stats (medians and min–max over seeds),
flow_ratios (the one statistic of the gradient ratio), spikes (gradient-norm spikes) and divergence_rules
(divergence and loss excursions), histogram_grid (re-binning histograms onto one grid), figure_data,
cliff_data, cures_data and spectrum_data (the numbers each figure draws), tables (the summary tables),
toy_gradients (the scalar toy's closed form and autograd: torch is imported when it is computed).
rnn_gradients.figures draws these. Importing any of it loads neither torch nor matplotlib.
"""

from __future__ import annotations

from rnn_gradients.analysis.cliff_data import loss_cliff_data
from rnn_gradients.analysis.discovery import discover_run_dirs
from rnn_gradients.analysis.divergence_rules import (
    EXCURSION_LOSS_MULTIPLE, WARMUP_FRACTION, divergence_outcome, divergence_table,
)
from rnn_gradients.analysis.event_files import Histogram, RunEvents, read_run_events
from rnn_gradients.analysis.figure_data import (
    RECURRENT_WEIGHT, W_HH_HIST_TAG, grad_flow_data, grad_histogram_data, grad_norm_data, gradient_paths_data,
    learning_curve_data, loss_vs_seq_len_data,
)
from rnn_gradients.analysis.grad_flow_npz import GradFlow
from rnn_gradients.analysis.histogram_grid import GRID_BINS, rebin
from rnn_gradients.analysis.loss_cliff_npz import CliffSlice, LossCliff, load_loss_cliff
from rnn_gradients.analysis.loading import NoRunsError, load_events, load_runs, warn_problems
from rnn_gradients.analysis.run_folder import Run, load_run, status_counts
from rnn_gradients.analysis.run_status import RunRecord, read_run
from rnn_gradients.analysis.seed_stats import aggregate_curves, median_curve, summarize_values
from rnn_gradients.analysis.selection import arm_sort_key, select, sort_key
from rnn_gradients.analysis.spikes import SPIKE_FACTOR, SPIKE_WINDOW, detect_spikes
from rnn_gradients.analysis.tables import (
    TABLE_TAGS, final_loss_table, grad_flow_table, gradient_paths_table, headline_numbers, loss_cliff_table, run_rows,
)
from rnn_gradients.analysis.toy_gradients import DEFAULT_WS, scalar_toy_data

__all__ = [
    "DEFAULT_WS", "EXCURSION_LOSS_MULTIPLE", "GRID_BINS", "RECURRENT_WEIGHT", "SPIKE_FACTOR", "SPIKE_WINDOW",
    "TABLE_TAGS", "W_HH_HIST_TAG", "WARMUP_FRACTION", "CliffSlice", "GradFlow", "Histogram",
    "LossCliff", "NoRunsError", "Run", "RunEvents", "RunRecord", "aggregate_curves", "arm_sort_key", "detect_spikes",
    "discover_run_dirs", "divergence_outcome", "divergence_table", "final_loss_table", "grad_flow_data",
    "grad_flow_table", "grad_histogram_data", "grad_norm_data", "gradient_paths_data", "gradient_paths_table",
    "headline_numbers", "learning_curve_data", "load_events", "load_loss_cliff", "load_run", "load_runs",
    "loss_cliff_data", "loss_cliff_table", "loss_vs_seq_len_data", "median_curve", "read_run", "read_run_events",
    "rebin", "run_rows", "scalar_toy_data", "select", "sort_key", "status_counts", "summarize_values", "warn_problems",
]
