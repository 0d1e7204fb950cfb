"""Every name a writer and a reader share, spelled once: the files of a run directory, the keys of
summary.json, the run statuses, the TensorBoard tags, the run-name format, and log10_ratio (the labels of
arms are the cells' own: rnn_gradients.cells).

The training run, the observatory callbacks, the sweep report, the figures and the tests all import
these; a tag or a status spelled anywhere else in src/ is a bug waiting for a rename. Torch-free (the
command line and the sweep report import it). The names are the users' interface (README): change
one only together with the README.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# ------------------------------------------------------------------------------------- run directory
SUMMARY_FILE = "summary.json"
GRAD_FLOW_FILE = "grad_flow.npz"
SPECTRUM_FILE = "spectrum.npz"
EVAL_FILE = "eval.json"  # python -m rnn_gradients.evaluate: one record per length and checkpoint
CONFIG_RESOLVED_FILE = "config_resolved.yaml"
TRAIN_LOG_FILE = "train.log"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
HYDRA_DIR = ".hydra"
SWEEP_REPORT_MD = "sweep_report.md"
SWEEP_REPORT_JSON = "sweep_report.json"
SWEEP_PLAN = ".sweep_plan.json"  # the launching process's plan: jobs, their overrides, start time (sweep_progress)
SWEEP_SLURM_JOBS = ".sweep_slurm_jobs.json"  # job number -> SLURM job id, written at submission (launcher)
SWEEP_STOP = ".sweep_stop"  # hydra.launcher.fail_fast: the failed job that stopped the sweep (fail_fast.py)
SEARCH_STUDY = "optuna.db"  # hydra/sweeper=optuna: the study, an SQLite database (hydra_plugins/rnn_gradients_search)
# what `python -m rnn_gradients.figures` writes beside the figures
FIGURES_CSV = "summary.csv"
FIGURES_MARKDOWN = "summary.md"
FIGURES_NUMBERS = "summary_numbers.json"  # not summary.json: a folder holding one is a run folder

# ---------------------------------------------------------------------------------------- statuses
COMPLETED = "completed"
DIVERGED = "diverged"
FAILED = "failed"
INTERRUPTED = "interrupted"
CANCELLED = "cancelled"  # not run: hydra.launcher.fail_fast stopped the sweep after a failed job
MISSING = "missing"  # no summary.json: not started, still running, or killed outright
UNREADABLE = "unreadable"  # a summary.json that is not a JSON object with one of SUMMARY_STATUSES
SUMMARY_STATUSES = (COMPLETED, DIVERGED, FAILED, INTERRUPTED, CANCELLED)  # what summary.json's "status" says
# What a run folder is (analysis.run_status reads it): the columns of the sweep report and of summary.md.
STATUSES = (*SUMMARY_STATUSES, MISSING, UNREADABLE)
FINISHED = (COMPLETED, DIVERGED)  # final numbers: a resumed sweep skips these, the figures use them
UNFINISHED = (FAILED, INTERRUPTED, CANCELLED, MISSING, UNREADABLE)  # a sweep with one of these exits 1

# ------------------------------------------------------------------------------- summary.json keys
# What a run is (known before it starts) ...
DESCRIPTION_KEYS = ("arm", "experiment", "model", "task", "seq_len", "clipping", "clip_threshold",
                    "optimizer", "lr", "forget_bias", "hidden_size", "seed")
# ... and how it ended.
OUTCOME_KEYS = ("status", "diverged", "diverged_at_step", "divergence_reason", "interrupted_by",
                "resumed_from_step", "steps", "wall_time_s", "baseline_loss", "metric", "train_loss",
                "train_normalized_loss", "val_loss", "val_normalized_loss", "val_accuracy")
FAILURE_REASON = "failure_reason"  # a failed run's exception: `Type: message`, its lines joined with " | "
LOG_FILE = "log_file"  # a failed run's log, with the traceback (its train.log)
CANCELLED_BECAUSE = "cancelled_because"  # a cancelled run's reason: the failed job that stopped the sweep

# ------------------------------------------------------------------------------- TensorBoard tags
TRAIN_LOSS, TRAIN_NORMALIZED_LOSS, TRAIN_ACCURACY = "train/loss", "train/normalized_loss", "train/accuracy"
VAL_LOSS, VAL_NORMALIZED_LOSS, VAL_ACCURACY = "val/loss", "val/normalized_loss", "val/accuracy"
STAGE_TAGS = {"train": (TRAIN_LOSS, TRAIN_NORMALIZED_LOSS, TRAIN_ACCURACY), "val": (VAL_LOSS, VAL_NORMALIZED_LOSS, VAL_ACCURACY)}

GRAD_NORM = "grad_norm/"  # + a parameter's name: its gradient norm
PRECLIP_NORM = "grad_norm/total_preclip"
POSTCLIP_NORM = "grad_norm/total_postclip"
CLIPPED = "grad_norm/clipped"
CLIP_THRESHOLD = "grad_norm/threshold"  # the clipping threshold, at the first and last step (clipping on)
UPDATE_RATIO = "update_ratio/"  # + a parameter's name: ‖ΔW‖/‖W‖ of the step
GRAD_HIST = "grad_hist/"  # + a parameter's name: its gradient-value histogram
GRAD_FLOW = "grad_flow/"
GRAD_FLOW_PLOT = "grad_flow/plot"
GATES = "gates/"


# HParams: what a run is (columns to sort and filter by) and how it ended (metric scalars at its last step)
HPARAMS = ("experiment", "arm", "model", "task", "seq_len", "hidden_size", "num_layers", "init",
           "forget_bias", "optimizer", "lr", "clipping", "clip_threshold", "seed")
NUMERIC_HPARAMS = ("seq_len", "hidden_size", "num_layers", "forget_bias", "lr", "clip_threshold", "seed")
HPARAM_VAL_NORMALIZED_LOSS = "hparams/val_normalized_loss"
HPARAM_VAL_ACCURACY = "hparams/val_accuracy"
HPARAM_DIVERGED = "hparams/diverged"
HPARAM_DIVERGED_AT_STEP = "hparams/diverged_at_step"
HPARAM_STEPS = "hparams/steps"
HPARAM_WALL_TIME_S = "hparams/wall_time_s"
HPARAM_LOG10_RATIO_H = "hparams/log10_ratio_h"
HPARAM_LOG10_RATIO_C = "hparams/log10_ratio_c"
HPARAM_METRICS = (HPARAM_VAL_NORMALIZED_LOSS, HPARAM_VAL_ACCURACY, HPARAM_DIVERGED, HPARAM_DIVERGED_AT_STEP,
                  HPARAM_STEPS, HPARAM_WALL_TIME_S, HPARAM_LOG10_RATIO_H, HPARAM_LOG10_RATIO_C)


EVAL = "eval/"  # python -m rnn_gradients.evaluate's scalars, at the checkpoint's step


def eval_tag(seq_len: int, name: str) -> str:
    """eval/T200/normalized_loss: one evaluated length's number (loss, normalized_loss, metric, log10_ratio_h, ...)."""
    return f"{EVAL}T{seq_len}/{name}"


def log10_ratio_tag(state: str) -> str:
    """grad_flow/log10_ratio_h (hidden state) or _c (LSTM cell state)."""
    return f"{GRAD_FLOW}log10_ratio_{state}"


def grad_flow_point_tag(state: str, t: int) -> str:
    """‖∂L/∂h_t‖ (or c) at one fixed t."""
    return f"{GRAD_FLOW}{state}_t{t:04d}"


def through_time_tag(state: str) -> str:
    return f"{GRAD_FLOW}{state}_through_time"


def time_norms_tag(state: str) -> str:
    return f"{GRAD_HIST}time_norms_{state}"


SPECTRUM = "spectrum/"
SPECTRUM_QUANTITIES = ("sigma_max", "radius", "bound")  # bound: Pascanu et al.'s 1/γ for that matrix
SPECTRUM_STEPS = "steps"  # the SPECTRUM_FILE key of the training steps measured, (n,)


def spectrum_key(quantity: str, matrix: str) -> str:
    """sigma_max_l0_hh, radius_l0_forget, bound_l0_hh: a spectrum.npz key; spectrum/ + it is the tag."""
    return f"{quantity}_{matrix}"


def spectrum_tag(quantity: str, matrix: str) -> str:
    return f"{SPECTRUM}{spectrum_key(quantity, matrix)}"


def gate_tag(gate: str, layer: int, mean: bool = False) -> str:
    return f"{GATES}{gate}_mean_l{layer}" if mean else f"{GATES}{gate}_l{layer}"


RECURRENT_WEIGHT = "rnn.weight_hh_l0"  # the parameter whose gradient histograms the figures draw


def grad_hist_tag(parameter: str) -> str:
    return f"{GRAD_HIST}{parameter}"


# ------------------------------------------------------------------------------------------- arms
# An arm's label is its cell's (rnn_gradients.cells: Cell.arm_label, e.g. 'LSTM', 'LSTM (no cell carry)'),
# with CLIP_SUFFIX when the run clips its gradients; cells.arm_order() gives the order of tables and legends.
CLIP_SUFFIX = "+clip"


def clipped_label(label: str, clipping: str = "norm") -> str:
    """'LSTM' -> 'LSTM+clip' when `clipping` is not 'none'."""
    return label if clipping == "none" else f"{label}{CLIP_SUFFIX}"


def run_name(cell: str, clipping: str, task: str, seq_len: int, seed: int) -> str:
    """What a run is, in its folder name and so in TensorBoard's run list: `lstm_normclip_copy_T100_s0`
    (`cell` is the cell's part, Cell.run_name_part: `lstm_nocarry` without the cell carry). A sweep puts
    its job number in front (`3_lstm_normclip_copy_T100_s0`), a single run its start time."""
    arm = cell if clipping == "none" else f"{cell}_{clipping}clip"
    return f"{arm}_{task}_T{seq_len}_s{seed}"


def job_number(folder_name: str) -> int | None:
    """The job number of a sweep job's folder (`3_lstm_copy_T100_s0` -> 3; older sweeps: `3`)."""
    head = folder_name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


# --------------------------------------------------------------------------------------- measures
def log10_ratio(norms: Sequence[float]) -> float:
    """log10(‖∂L/∂x_0‖ / ‖∂L/∂x_{T-1}‖) of a gradient-norm curve over t: far below 0 = vanishing back in
    time, above 0 = growing. -inf when the first norm underflowed to exactly 0 (and the last did not);
    NaN when the last is 0 or either is not finite. Accepts a list, a NumPy array or a 1-D tensor."""
    first, last = float(norms[0]), float(norms[-1])
    if first <= 0 or last <= 0 or not (math.isfinite(first) and math.isfinite(last)):
        return float("-inf") if first == 0 < last and math.isfinite(last) else float("nan")
    return math.log10(first / last)


# ------------------------------------------------------------------- cell-state gradient paths (LSTM)
# ∂L/∂c_t = carry + output: the carry path through c_{t+1} (f_{t+1} ⊙ ∂L/∂c_{t+1}, 0 at t = T-1) and
# the output path through h_t (o_t ⊙ (1 − tanh²(c_t)) ⊙ ∂L/∂h_t). Their norms over t, one row per
# measured step, are kept in GRAD_FLOW_FILE under these keys (empty (0, 0) arrays for the RNN), and in
# the grad-flow callback's checkpoint state under the same names.
GRAD_FLOW_CARRY_KEY = "c_via_carry"
GRAD_FLOW_OUTPUT_KEY = "c_via_output"
GRAD_FLOW_PATH_KEYS = (GRAD_FLOW_CARRY_KEY, GRAD_FLOW_OUTPUT_KEY)


# ------------------------------- the loss cliff (Pascanu, Mikolov & Bengio 2013; docs/references.md: Clipping)
# The training loss on one batch along the gradient direction, L(θ − α·g/‖g‖), recorded in the exploding
# sweep at the step of the run's largest pre-clip gradient norm, at the step before a divergence, and at the
# first step whose update multiplied the loss on its own batch (at least callbacks.loss_cliff.uphill_factor×):
# the first step that jumped the wall, before the run blows up.
# LOSS_CLIFF_FILE holds, for each kind recorded, `<kind>_<field>` arrays: step (), grad_norm () (‖g‖
# before clipping), alphas (A,), losses (A,) (NaN where not finite), loss0 () (the batch loss at θ),
# actual_alpha () (‖Δθ‖ of the step the optimizer took) and actual_loss () (the loss on the same batch
# after it); plus baseline_loss ().
LOSS_CLIFF_FILE = "loss_cliff.npz"
CLIFF_AT_MAX_NORM = "max_norm"
CLIFF_BEFORE_DIVERGENCE = "before_divergence"
CLIFF_FIRST_UPHILL = "first_uphill"
CLIFF_KINDS = (CLIFF_AT_MAX_NORM, CLIFF_BEFORE_DIVERGENCE, CLIFF_FIRST_UPHILL)
CLIFF_FIELDS = ("step", "grad_norm", "alphas", "losses", "loss0", "actual_alpha", "actual_loss")

