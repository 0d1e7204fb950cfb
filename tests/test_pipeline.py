"""End to end: `make reproduce PROFILE=smoke`'s script (conftest.smoke, whose jobs test_cli.py checks one by one),
and the sweep launchers (joblib, submitit)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from conftest import TINY, job_dir, read_summary, run_cli
from run_checks import curve, weights

FIGURES = ["scalar_toy", "grad_flow_through_time", "gradient_paths", "learning_curves", "grad_norm_training",
           "loss_vs_seq_len", "divergence_vs_lr", "loss_cliff", "grad_histograms", "cures", "recurrent_spectrum",
           "length_generalization"]  # the last: reproduce.py evaluates the arms sweep
CURE_ARMS = ("RNN", "IRNN", "RNN (orthogonal)", "RNN (orthogonal, modReLU)", "GRU", "LSTM", "LSTM (chrono)")


def test_smoke_profile_runs_all_four_sweeps(smoke):
    outputs, proc = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root,) = (outputs / "reproduce").iterdir()
    # smoke grid: 4 arms x 2 tasks x 2 T x 1 seed; 2 optimizers x 2 lrs x 3 clippings; 2 forget biases;
    # 7 cures x 2 tasks x T=10
    expected = {"arms": 16, "exploding": 12, "forget_bias": 2, "cures": 14}
    for experiment, jobs in expected.items():
        summaries = [read_summary(p.parent) for p in (root / experiment).glob("*/summary.json")]
        assert len(summaries) == jobs, experiment
        assert all(s["experiment"] == experiment and s["status"] in ("completed", "diverged") for s in summaries)
        report = json.loads((root / experiment / "sweep_report.json").read_text())
        assert report["counts"]["failed"] == report["counts"]["missing"] == 0
    arms = {(s["arm"], s["task"], s["seq_len"]) for s in map(read_summary, (p.parent for p in (root / "arms").glob("*/summary.json")))}
    assert arms == {(a, t, T) for a in ("RNN", "LSTM (no cell carry)", "LSTM", "LSTM+clip") for t in ("adding", "copy") for T in (10, 20)}
    cures = {(s["arm"], s["task"], s["seq_len"]) for s in map(read_summary, (p.parent for p in (root / "cures").glob("*/summary.json")))}
    assert cures == {(a, t, 10) for a in CURE_ARMS for t in ("adding", "copy")}


def test_smoke_profile_writes_every_figure_and_table(smoke):
    outputs, proc = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = outputs / "figures"
    for name in FIGURES:
        image = matplotlib.image.imread(figures / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200, name
        assert image.std() > 0.01, f"{name}.png is blank"
        assert (figures / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name
    with open(figures / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 44  # 30 of the three ablations + 14 cures
    # the table says what each run's own summary.json says (read independently here)
    for row in rows:
        summary = read_summary(Path(row["run_dir"]))
        assert row["status"] == summary["status"] and int(row["steps"]) == summary["steps"], row["run_dir"]
        if summary["val_normalized_loss"] is not None:
            assert float(row["val_normalized_loss"]) == pytest.approx(summary["val_normalized_loss"], rel=1e-6)
    assert "Final validation loss" in (figures / "summary.md").read_text()



def test_joblib_launcher_gives_each_job_its_share_of_the_cores(tmp_path):
    result = run_cli(["-m", *TINY, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=0,1",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    cores = len(os.sched_getaffinity(0))
    for job in (0, 1):
        log = (job_dir(tmp_path / "sweep", job) / "train.log").read_text()
        threads = max(1, cores // 2)
        assert f"| {threads} torch thread{'' if threads == 1 else 's'} (CPU affinity mask: {cores} cores / 2 parallel jobs)" in log
        assert read_summary(job_dir(tmp_path / "sweep", job))["status"] == "completed"


def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    result = run_cli(["-m", *TINY, "hydra/launcher=submitit_local", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    a, b = (read_summary(job_dir(tmp_path / "sweep", j)) for j in (0, 1))
    assert a["status"] == b["status"] == "completed" and (a["seed"], b["seed"]) == (0, 1)
    assert a["train_loss"] != b["train_loss"]
    assert json.loads((tmp_path / "sweep" / "sweep_report.json").read_text())["counts"]["completed"] == 2


def _runs_of(root: Path, experiment: str) -> dict[tuple[str, str], Path]:
    """(task, arm label) -> run folder, from each run's own summary.json."""
    runs = {}
    for path in (root / experiment).glob("*/summary.json"):
        summary = read_summary(path.parent)
        runs[(summary["task"], summary["arm"])] = path.parent
    return runs


def test_smoke_cures_table_is_each_runs_own_numbers(smoke):
    outputs, proc = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root,) = (outputs / "reproduce").iterdir()
    numbers = json.loads((outputs / "figures" / "summary_numbers.json").read_text())
    runs = _runs_of(root, "cures")
    assert {(r["task"], r["arm"]) for r in numbers["cures"]} == set(runs)  # every cell of every task, once
    for row in numbers["cures"]:
        run = runs[(row["task"], row["arm"])]
        summary = read_summary(run)
        assert row["median_val_normalized_loss"] == pytest.approx(summary["val_normalized_loss"], rel=1e-9)
        with np.load(run / "grad_flow.npz") as z:  # log10 ‖∂L/∂h_0‖/‖∂L/∂h_{T-1}‖ at step 0 and at the end
            h = z["h"].astype(float)
        assert row["median_log10_ratio_h_init"] == pytest.approx(np.log10(h[0, 0] / h[0, -1]), abs=1e-9)
        assert row["median_log10_ratio_h_final"] == pytest.approx(np.log10(h[-1, 0] / h[-1, -1]), abs=1e-9)
        below = [s for s, v in curve(run, "val/normalized_loss") if v < 0.9]  # TensorBoard's own reader
        assert row["median_first_step_below"] == (below[0] if below else None), row["arm"]
        assert row["n_below"] == int(bool(below))


def _svd_of_checkpoint(run: Path, blocks: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """(σ_max, spectral radius) of each gate block of W_hh in the run's last checkpoint, by numpy."""
    w = weights(run)["network.rnn.weight_hh_l0"].double().numpy()
    out = {}
    for block, rows in zip(blocks, np.split(w, len(blocks)), strict=True):
        out[block] = (np.linalg.svd(rows, compute_uv=False)[0], np.abs(np.linalg.eigvals(rows)).max())
    return out


def test_smoke_spectrum_table_matches_the_trained_weights(smoke):
    outputs, proc = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root,) = (outputs / "reproduce").iterdir()
    numbers = json.loads((outputs / "figures" / "summary_numbers.json").read_text())
    rows = {(r["task"], r["arm"], r["block"]): r for r in numbers["spectrum"]["cures"]}
    runs = _runs_of(root, "cures")
    gates = {"RNN": ("hh",), "LSTM": ("input", "forget", "cell", "output"), "GRU": ("reset", "update", "new")}
    for task in ("adding", "copy"):
        for arm, blocks in gates.items():
            for block, (sigma, _) in _svd_of_checkpoint(runs[(task, arm)], blocks).items():
                row = rows[(task, arm, block)]
                assert row["sigma_end"] == pytest.approx(sigma, rel=1e-5), (task, arm, block)
                assert row["bound"] == (1.0 if block in ("hh", "cell", "new") else 4.0)  # 1/γ: tanh 1, sigmoid 4
        for arm in ("RNN (orthogonal)", "RNN (orthogonal, modReLU)"):  # on the orthogonal group throughout
            row = rows[(task, arm, "hh")]
            assert abs(row["sigma_init"] - 1) < 1e-5 and abs(row["sigma_end"] - 1) < 1e-5
    # the exploding pair: the unclipped SGD run at the largest lr that diverged, and its norm-clipped twin
    exploding = [r for r in numbers["spectrum"]["exploding"] if r["block"] is None]
    assert [r["clipping"] for r in exploding] == ["none", "norm"]
    for row in exploding:
        (run,) = [p.parent for p in (root / "exploding").glob("*/summary.json")
                  if (s := read_summary(p.parent))["optimizer"] == "sgd" and s["clipping"] == row["clipping"]
                  and s["lr"] == row["lr"] and s["seed"] == row["seed"]]
        summary = read_summary(run)
        assert row["lr"] == 1.0 and row["diverged_at_step"] == summary["diverged_at_step"]
        assert (row["clipping"] == "none") == (summary["status"] == "diverged")
        with np.load(run / "loss_cliff.npz") as z:
            assert row["first_uphill_step"] == int(z["first_uphill_step"])
        with np.load(run / "spectrum.npz") as z:
            sigma = np.max([z[k] for k in z.files if k.startswith("sigma_max_")], axis=0)
            steps = z["steps"]
        assert row["sigma_init"] == pytest.approx(sigma[0]) and steps[0] == 0
        assert row["sigma_first_uphill"] == pytest.approx(sigma[steps <= row["first_uphill_step"]][-1])
