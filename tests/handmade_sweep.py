"""A hand-made sweep with known values, for the figures' tests (no training is run).

The sweep is written by hand: .hydra/ files, summary.json, grad_flow.npz and TensorBoard event files
(torch's SummaryWriter) whose values are chosen so that every median, spike and fraction is known.
Tag and file names are spelled out here on purpose: the tests check the reader against what a writer
of the documented format produces, not against the reader's own constants.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml

HIST_TAG = "grad_hist/rnn.weight_hh_l0"
ADDING_BASELINE = 1 / 6
ARM_CELL = {"RNN": ("rnn", "none"), "LSTM": ("lstm", "none"), "LSTM+clip": ("lstm", "norm")}
# The `_target_` a composed config names each cell and task by (conf/model/*.yaml, conf/data/*.yaml).
CELL_TARGET = {"rnn": "rnn_gradients.cells.rnn.RNN", "lstm": "rnn_gradients.cells.lstm.LSTM"}
TASK_TARGET = {"adding": "rnn_gradients.tasks.adding.Adding", "copy": "rnn_gradients.tasks.copy.Copy"}
# val/normalized_loss at steps 100, 200, 300 for seed 0; seed s is scaled by (1 + 0.1 s).
VAL_BASE = {"RNN": [1.0, 1.0, 0.98], "LSTM": [0.9, 0.5, 0.1], "LSTM+clip": [0.8, 0.4, 0.05]}
VAL_STEPS = [100, 200, 300]
SPIKE_STEP = 123
HIST_STEPS = [1, 75, 150, 225, 300]
T_ARMS = 50
N_JOBS = 25


def write_job(job: Path, *, experiment: str | None, arm: str = "LSTM", task: str = "adding", seq_len: int = 100,
              optimizer: str = "adam", lr: float = 1e-3, clipping: str | None = None, forget_bias: float | None = 1.0,
              seed: int = 0, steps: int = 300, summary: dict | None | str = "auto", scalars: dict | None = None,
              histograms: dict | None = None, grad_flow: dict | None = None) -> Path:
    """One job folder as `python -m rnn_gradients.train -m` writes it (summary=None: still running)."""
    cell, default_clip = ARM_CELL[arm]
    clipping = clipping or default_clip
    threshold = None if clipping == "none" else 1.0
    job.mkdir(parents=True)
    hydra = job / ".hydra"
    hydra.mkdir()
    config = {
        "seed": seed,
        "data": {"_target_": TASK_TARGET[task], "seq_len": seq_len},
        "model": {"_target_": CELL_TARGET[cell], "hidden_size": 16,
                  "forget_bias": forget_bias if cell == "lstm" else None},
        "clipping": {"mode": clipping, "threshold": threshold},
        "optimizer": {"_target_": {"adam": "torch.optim.Adam", "sgd": "torch.optim.SGD"}[optimizer], "lr": lr},
        "trainer": {"max_steps": steps},
        "logger": {"save_dir": "${hydra:runtime.output_dir}"},  # unresolvable outside Hydra, as in real runs
    }
    (hydra / "config.yaml").write_text(yaml.safe_dump(config))
    choices = {"optimizer": optimizer, "data": task}
    if experiment:
        choices["experiment"] = experiment
    (hydra / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (hydra / "overrides.yaml").write_text(yaml.safe_dump([f"seed={seed}"] + ([f"experiment={experiment}"] if experiment else [])))
    val = scalars.get("val/normalized_loss") if scalars else None
    final = val[-1][1] if val else 1.0
    if summary == "auto":
        summary = {}
    if isinstance(summary, dict):
        full = {
            "status": "completed", "diverged": False, "diverged_at_step": None, "divergence_reason": None,
            "arm": arm, "experiment": experiment, "model": cell, "task": task, "seq_len": seq_len,
            "clipping": clipping, "clip_threshold": threshold, "optimizer": optimizer, "lr": lr,
            "forget_bias": forget_bias if cell == "lstm" else None, "hidden_size": 16, "seed": seed, "steps": steps,
            "wall_time_s": 1.0, "baseline_loss": ADDING_BASELINE, "metric": "fraction within 0.04 of the target",
            "train_loss": 0.1, "train_normalized_loss": 0.6, "val_loss": final * ADDING_BASELINE,
            "val_normalized_loss": final, "val_accuracy": 0.5,
        }
        full.update(summary)
        (job / "summary.json").write_text(json.dumps(full))
    elif isinstance(summary, str):
        (job / "summary.json").write_text(summary)
    if scalars or histograms:
        write_events(job / "tensorboard", scalars or {}, histograms or {})
    if grad_flow is not None:
        np.savez_compressed(job / "grad_flow.npz", **grad_flow)
    return job


def write_events(logdir: Path, scalars: dict, histograms: dict) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(logdir))
    for tag, points in scalars.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    for tag, hists in histograms.items():
        for step, edges, counts in hists:
            edges, counts = np.asarray(edges, float), np.asarray(counts, float)
            centers = (edges[1:] + edges[:-1]) / 2
            writer.add_histogram_raw(tag, min=float(edges[0]), max=float(edges[-1]), num=float(counts.sum()),
                                     sum=float((centers * counts).sum()), sum_squares=float((centers**2 * counts).sum()),
                                     bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(), global_step=step)
    writer.close()


def exp_curve(slope: float, length: int) -> np.ndarray:
    """norm_t = 10^(-slope (L-1-t)): log10(norm_0 / norm_{L-1}) = -slope (L-1)."""
    return 10.0 ** (-slope * (length - 1 - np.arange(length)))


def grad_norm_series(spike_at: int | None) -> list[tuple[int, float]]:
    values = [(s, 1.0 + 0.2 * math.sin(s)) for s in range(1, 301)]
    if spike_at is not None:
        values[spike_at - 1] = (spike_at, 50.0)
    return values


def hist_counts(step: int) -> tuple[np.ndarray, np.ndarray]:
    width = 0.01 * (1 + step / 100)
    return np.linspace(-width, width, 9), np.arange(1, 9, dtype=float) + step


def make_sweep(root: Path) -> Path:
    """25 job folders over three sweeps + a loose run: counts and values below are what tests expect."""
    arms = root / "multirun" / "arms"
    job = 0
    for arm in ("RNN", "LSTM", "LSTM+clip"):
        for seed in (0, 1, 2):
            scale = 1 + 0.1 * seed
            slope = {"RNN": 0.1, "LSTM": 0.02, "LSTM+clip": 0.02}[arm] + 0.01 * seed
            flow = {"steps": np.array([0, 300]), "h": np.stack([exp_curve(slope, T_ARMS), exp_curve(slope / 2, T_ARMS)]),
                    "c": np.zeros((0, 0)) if arm == "RNN" else np.stack([exp_curve(slope / 4, T_ARMS)] * 2),
                    "loss": np.array([0.2, 0.1])}
            scalars = {
                "val/normalized_loss": [(s, b * scale) for s, b in zip(VAL_STEPS, VAL_BASE[arm])],
                "train/loss": [(s, 0.1) for s in range(10, 301, 10)],
                "grad_norm/total_preclip": grad_norm_series(SPIKE_STEP if (arm == "LSTM" and seed == 0) else None),
            }
            hists = {HIST_TAG: [(s, *hist_counts(s)) for s in HIST_STEPS]} if seed == 0 else None
            write_job(arms / str(job), experiment="arms", arm=arm, seq_len=T_ARMS, seed=seed, scalars=scalars,
                      histograms=hists, grad_flow=flow)
            job += 1
    # A job still running (or killed): config and events, no summary.json.
    write_job(arms / str(job), experiment="arms", arm="RNN", seq_len=T_ARMS, seed=3, summary=None,
              scalars={"train/loss": [(10, 0.2)]})
    # A job that crashed: train.py writes what the run is, status failed and the reason; no numbers.
    failed = {"arm": "LSTM", "experiment": "arms", "model": "lstm", "task": "adding", "seq_len": T_ARMS,
              "clipping": "none", "clip_threshold": None, "optimizer": "adam", "lr": 1e-3, "forget_bias": 1.0,
              "hidden_size": 16, "seed": 3, "status": "failed", "failure_reason": "RuntimeError: boom"}
    write_job(arms / str(job + 1), experiment="arms", arm="LSTM", seq_len=T_ARMS, seed=3, summary=json.dumps(failed))

    exploding = root / "multirun" / "exploding"
    b = ADDING_BASELINE
    # (clipping, lr, seed) -> (summary overrides, train/loss points); 100 planned steps, warm-up = first 10.
    calm = [(s, 0.15) for s in range(0, 101, 10)]
    cases = {
        ("none", 1.0, 0): ({"status": "diverged", "diverged": True, "diverged_at_step": 40}, calm[:5]),
        ("none", 1.0, 1): ({}, calm[:6] + [(60, 10 * b)] + calm[7:]),  # spiked
        ("none", 0.01, 0): ({}, calm),
        ("none", 0.01, 1): ({}, [(0, 5.0), (10, 5.0)] + calm[2:]),  # high only within the first 10%: not a spike
        ("norm", 1.0, 0): ({}, calm[:8] + [(80, 0.6)] + calm[9:]),  # 0.6 > 3 x 1/6: spiked
        ("norm", 1.0, 1): ({}, calm),
        ("norm", 0.01, 0): ({}, calm[:3] + [(30, float("nan"))] + calm[4:]),  # non-finite loss: diverged
        ("norm", 0.01, 1): ({}, calm),
    }
    for job, ((clipping, lr, seed), (summary, loss)) in enumerate(cases.items()):
        write_job(exploding / str(job), experiment="exploding", arm="LSTM+clip" if clipping != "none" else "LSTM",
                  clipping=clipping, optimizer="sgd", lr=lr, seed=seed, steps=100, summary=summary,
                  scalars={"train/loss": loss})
    write_job(exploding / "8", experiment="exploding", arm="LSTM", clipping="none", optimizer="sgd", lr=1.0, seed=2,
              steps=100, summary=None)
    # Interrupted (SIGTERM) with a loss spike: not finished, so not in the fractions.
    write_job(exploding / "9", experiment="exploding", arm="LSTM+clip", clipping="norm", optimizer="sgd", lr=1.0, seed=2,
              steps=100, summary={"status": "interrupted", "interrupted_by": "SIGTERM"},
              scalars={"train/loss": [(50, 100.0)]})

    forget = root / "multirun" / "forget"
    for job, (fb, slope) in enumerate(((0.0, 0.3), (5.0, -0.01))):
        flow = {"steps": np.array([0, 20]), "h": np.ones((2, 30)), "c": np.stack([exp_curve(slope, 30)] * 2),
                "loss": np.array([0.2, 0.2])}
        write_job(forget / str(job), experiment="forget_bias", forget_bias=fb, seq_len=30, grad_flow=flow)
    write_job(forget / "2", experiment="forget_bias", forget_bias=1.0, seq_len=30, summary="{not json")

    # A single run elsewhere with two event files (merged) and a corrupt one (skipped with a warning).
    loose = write_job(root / "runs" / "loose", experiment="arms", arm="RNN", seq_len=20, seed=0,
                      summary={"val_normalized_loss": 0.7}, scalars={"val/normalized_loss": [(100, 0.9), (200, 0.8)]})
    write_events(loose / "tensorboard", {"val/normalized_loss": [(300, 0.7)]}, {})
    (loose / "tensorboard" / "events.out.tfevents.x").write_bytes(np.random.default_rng(0).bytes(4096))
    return root




def by_path(runs, suffix: str):
    return next(r for r in runs if str(r.path).endswith(suffix))
