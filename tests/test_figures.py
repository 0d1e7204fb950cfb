"""The figures pipeline on a hand-made sweep with known values (no training is run here).

The sweep is written by hand: .hydra/ files, summary.json, grad_flow.npz and TensorBoard event files
(torch's SummaryWriter) whose values are chosen so that every median, spike and fraction is known.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rnn_gradients.figures import scalar_toy_data
from rnn_gradients.figures.curves import aggregate_curves, learning_curve_data, loss_vs_seq_len_data
from rnn_gradients.figures.divergence import divergence_table
from rnn_gradients.figures.events import read_run_events
from rnn_gradients.figures.grad_flow import grad_flow_data
from rnn_gradients.figures.grad_norms import detect_spikes, grad_norm_data
from rnn_gradients.figures.histograms import HIST_TAG, grad_histogram_data, rebin
from rnn_gradients.figures.runs import discover_run_dirs, load_runs, status_counts
from rnn_gradients.figures.table import final_loss_table, grad_flow_table

ADDING_BASELINE = 1 / 6
FIGURES = ("scalar_toy", "grad_flow_through_time", "learning_curves", "grad_norm_training", "loss_vs_seq_len",
           "divergence_vs_lr", "grad_histograms")
ARM_CELL = {"RNN": ("rnn", "none"), "LSTM": ("lstm", "none"), "LSTM+clip": ("lstm", "norm")}
# val/normalized_loss at steps 100, 200, 300 for seed 0; seed s is scaled by (1 + 0.1 s).
VAL_BASE = {"RNN": [1.0, 1.0, 0.98], "LSTM": [0.9, 0.5, 0.1], "LSTM+clip": [0.8, 0.4, 0.05]}
VAL_STEPS = [100, 200, 300]
SPIKE_STEP = 123
HIST_STEPS = [1, 75, 150, 225, 300]
T_ARMS = 50
N_JOBS = 25


# ------------------------------------------------------------------------------------------ hand-made runs


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
        "data": {"name": task, "seq_len": seq_len},
        "model": {"cell": cell, "hidden_size": 16, "forget_bias": forget_bias if cell == "lstm" else None},
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


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def runs(sweep):
    return load_runs([sweep])


def by_path(runs, suffix: str):
    return next(r for r in runs if str(r.path).endswith(suffix))


# ------------------------------------------------------------------------------------------ unit tests


def test_scalar_toy_autograd_matches_closed_form():
    data = scalar_toy_data(ws=(0.9, 1.0, 1.1), steps=100)
    assert list(data["t"]) == list(range(1, 101))
    for w in (0.9, 1.0, 1.1):
        closed, auto = data["closed_form"][w], data["autograd"][w]
        np.testing.assert_allclose(auto, closed, rtol=1e-6)
        assert closed[99] == pytest.approx(100 * w**99)
    assert data["autograd"][1.1][99] > 1e6 and data["autograd"][0.9][99] < 4e-3  # explodes / vanishes


def test_detect_spikes_finds_the_injected_step_only():
    values = np.array([v for _, v in grad_norm_series(SPIKE_STEP)])
    assert np.flatnonzero(detect_spikes(values)).tolist() == [SPIKE_STEP - 1]
    early = np.ones(30)
    early[5] = 1000.0  # fewer than 10 previous steps: never a spike
    early[20] = 11.0  # > 10 x median(1, ..., 1000, ...) = 10.0
    assert np.flatnonzero(detect_spikes(early)).tolist() == [20]


def test_rebin_preserves_counts_and_splits_uniformly():
    out = rebin(np.array([0.0, 1.0, 2.0]), np.array([4.0, 2.0]), np.array([0.0, 0.5, 1.5, 2.0]))
    np.testing.assert_allclose(out, [2.0, 3.0, 1.0])
    point = rebin(np.array([1.0, 1.0]), np.array([5.0]), np.array([0.0, 0.5, 1.5]))  # zero-width bucket
    np.testing.assert_allclose(point, [0.0, 5.0])


def test_aggregate_curves_median_and_band():
    agg = aggregate_curves([(np.array([1, 2]), np.array([1.0, 4.0])), (np.array([1, 2, 3]), np.array([3.0, 2.0, 9.0])),
                            (np.array([1, 2]), np.array([2.0, np.nan]))])
    assert agg["steps"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(agg["median"], [2.0, 3.0, 9.0])
    np.testing.assert_allclose(agg["lo"], [1.0, 2.0, 9.0])
    np.testing.assert_allclose(agg["hi"], [3.0, 4.0, 9.0])
    assert agg["n"].tolist() == [3, 2, 1]


# ------------------------------------------------------------------------------------------ the hand-made sweep


def test_discovery_from_sweep_run_and_parent(sweep):
    assert len(discover_run_dirs([sweep])) == N_JOBS
    assert len(discover_run_dirs([sweep / "multirun" / "exploding"])) == 10
    assert discover_run_dirs([sweep / "runs" / "loose"]) == [(sweep / "runs" / "loose").resolve()]
    with pytest.raises(FileNotFoundError):
        discover_run_dirs([sweep / "nope"])


def test_status_counts_include_unfinished_and_unreadable_jobs(runs):
    counts = status_counts(runs)
    zero = {"completed": 0, "diverged": 0, "failed": 0, "interrupted": 0, "failed_or_running": 0, "unreadable": 0}
    assert counts["arms"] == {**zero, "completed": 10, "failed": 1, "failed_or_running": 1, "total": 12}
    assert counts["exploding"] == {**zero, "completed": 7, "diverged": 1, "interrupted": 1, "failed_or_running": 1,
                                   "total": 10}
    assert counts["forget_bias"] == {**zero, "completed": 2, "unreadable": 1, "total": 3}
    assert counts["all"]["total"] == N_JOBS
    unfinished = by_path(runs, "arms/9")
    assert (unfinished.status, unfinished.get("arm"), unfinished.get("seed")) == ("failed_or_running", "RNN", 3)
    assert not unfinished.usable and not by_path(runs, "arms/10").usable and not by_path(runs, "exploding/9").usable


def test_every_histogram_is_read(sweep):
    events = read_run_events(sweep / "multirun" / "arms" / "0")
    hists = events.histograms[HIST_TAG]
    assert [h.step for h in hists] == HIST_STEPS  # the default size_guidance would keep only 1
    edges, counts = hist_counts(150)
    np.testing.assert_allclose(hists[2].counts, counts)
    np.testing.assert_allclose(hists[2].edges, edges, rtol=1e-6)
    steps, values = events.scalars["grad_norm/total_preclip"]
    assert len(steps) == 300  # all 300 scalars, none sampled away


def test_corrupt_event_file_is_skipped_with_a_warning(sweep, caplog):
    with caplog.at_level(logging.WARNING):
        runs = load_runs([sweep / "runs"])
    assert len(runs) == 1 and runs[0].status == "completed"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("events.out.tfevents.x" in m for m in warnings), warnings
    events = runs[0].events
    assert [Path(p).name for p in events.unreadable] == ["events.out.tfevents.x"]
    assert len(events.files) == 2
    steps, values = events.scalars["val/normalized_loss"]  # merged across the two valid files
    assert steps.tolist() == [100, 200, 300]
    np.testing.assert_allclose(values, [0.9, 0.8, 0.7], rtol=1e-6)


def test_resumed_run_purges_events_after_its_checkpoint(tmp_path):
    """A resumed run's writer has purge_step: what the interrupted run logged after it is dropped."""
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "run" / "tensorboard"
    for name, purge, points in (("1000", None, [(100, 1.0), (200, 2.0), (300, 3.0), (400, 4.0)]),
                                ("2000", 201, [(300, 30.0)])):
        writer = SummaryWriter(log_dir=str(tb), purge_step=purge)
        for step, value in points:
            writer.add_scalar("val/normalized_loss", value, step)
        writer.close()
        newest = max(tb.glob("events.out.tfevents.*[0-9]"), key=lambda p: p.stat().st_mtime_ns)
        newest.rename(tb / f"events.out.tfevents.{name}.host")  # name order = creation order
    steps, values = read_run_events(tmp_path / "run").scalars["val/normalized_loss"]
    assert steps.tolist() == [100, 200, 300]
    np.testing.assert_allclose(values, [1.0, 2.0, 30.0])


def test_learning_curves_median_and_min_max_over_seeds(runs):
    data = learning_curve_data(runs)
    assert set(data) == {("adding", T_ARMS), ("adding", 20)}
    for arm, base in VAL_BASE.items():
        agg = data[("adding", T_ARMS)][arm]
        assert agg["steps"].tolist() == VAL_STEPS and agg["n"].tolist() == [3, 3, 3]
        np.testing.assert_allclose(agg["median"], np.array(base) * 1.1, rtol=1e-6)
        np.testing.assert_allclose(agg["lo"], np.array(base) * 1.0, rtol=1e-6)
        np.testing.assert_allclose(agg["hi"], np.array(base) * 1.2, rtol=1e-6)
    lsl = loss_vs_seq_len_data(runs)["adding"]
    assert lsl["LSTM"][T_ARMS]["median"] == pytest.approx(0.11) and lsl["LSTM"][T_ARMS]["n"] == 3
    assert lsl["RNN"][20]["median"] == pytest.approx(0.7)


def test_final_loss_table(runs):
    rows = {(r["experiment"], r["arm"], r["seq_len"]): r for r in final_loss_table(runs)}
    lstm = rows[("arms", "LSTM", T_ARMS)]
    assert lstm["n_seeds"] == 3
    assert lstm["median_val_normalized_loss"] == pytest.approx(0.11)
    assert lstm["min_val_normalized_loss"] == pytest.approx(0.10)
    assert lstm["max_val_normalized_loss"] == pytest.approx(0.12)
    assert not any(r["experiment"] == "exploding" for r in rows.values())


def test_grad_norm_spike_detected_at_injected_step(runs):
    data = grad_norm_data(runs)
    assert (data["task"], data["seq_len"]) == ("adding", T_ARMS)
    lstm, clip = data["arms"]["LSTM"], data["arms"]["LSTM+clip"]
    assert lstm["seed"] == 0 and clip["seed"] == 0
    assert lstm["steps"][lstm["spikes"]].tolist() == [SPIKE_STEP]
    assert not clip["spikes"].any()
    assert clip["threshold"] == 1.0


def test_divergence_fractions_are_exact(runs):
    rows = {(r["optimizer"], r["clipping"], r["lr"]): r for r in divergence_table(runs)}
    expected = {("sgd", "none", 1.0): (2, 1, 1, 2), ("sgd", "none", 0.01): (2, 0, 0, 0),
                ("sgd", "norm", 1.0): (2, 0, 1, 1), ("sgd", "norm", 0.01): (2, 1, 0, 1)}
    assert set(rows) == set(expected)
    for key, (n, diverged, spiked, bad) in expected.items():
        row = rows[key]
        assert (row["n_runs"], row["n_diverged"], row["n_spiked"], row["n_diverged_or_spiked"]) == (n, diverged, spiked, bad), key
        assert row["fraction"] == pytest.approx(bad / n)
    assert rows[("sgd", "none", 1.0)]["n_not_finished"] == 1  # no summary.json
    assert rows[("sgd", "norm", 1.0)]["n_not_finished"] == 1  # interrupted


def test_grad_flow_ratios(runs):
    rows = {(r["experiment"], r["arm"], r["forget_bias"], r["seq_len"]): r for r in grad_flow_table(runs)}
    rnn = rows[("arms", "RNN", None, T_ARMS)]
    assert rnn["n_seeds"] == 3
    assert rnn["log10_ratio_h_init"] == pytest.approx(-(0.1 + 0.01) * (T_ARMS - 1))  # median slope: seed 1
    assert rnn["log10_ratio_h_final"] == pytest.approx(-(0.1 + 0.01) / 2 * (T_ARMS - 1))
    assert rnn["log10_ratio_c_init"] is None
    lstm = rows[("arms", "LSTM", 1.0, T_ARMS)]
    assert lstm["log10_ratio_c_init"] == pytest.approx(-(0.02 + 0.01) / 4 * (T_ARMS - 1))
    assert rows[("forget_bias", "LSTM", 5.0, 30)]["log10_ratio_c_init"] == pytest.approx(0.01 * 29)
    data = grad_flow_data(runs)
    assert data["arms"]["seq_len"] == T_ARMS
    assert data["arms"]["curves"][("RNN", "h")]["init_ratio"] == pytest.approx(-0.11 * (T_ARMS - 1))
    assert list(data["forget_bias"]["curves"]) == [0.0, 5.0]


def test_histogram_heatmap_keeps_every_count(runs):
    data = grad_histogram_data(runs)
    assert set(data["arms"]) == {"RNN", "LSTM", "LSTM+clip"}
    rnn = data["arms"]["RNN"]
    assert rnn["steps"].tolist() == HIST_STEPS
    expected_totals = [hist_counts(s)[1].sum() for s in HIST_STEPS]
    np.testing.assert_allclose(rnn["counts"].sum(axis=1), expected_totals, rtol=1e-6)


# ------------------------------------------------------------------------------------------ the CLI


def run_figures(args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "rnn_gradients.figures", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def cli_out(sweep, tmp_path_factory):
    out = sweep / "figures"  # inside the scanned tree: must not be taken for a run
    result = run_figures([sweep, "--out", out, "-q"], cwd=tmp_path_factory.mktemp("cwd"))
    return result, out


def test_cli_missing_path_exits_2_with_one_line(tmp_path):
    result = run_figures([tmp_path / "does-not-exist"], cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does-not-exist" in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_cli_no_usable_runs_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_figures([empty], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "no runs found" in result.stderr
    waiting = tmp_path / "waiting"
    write_job(waiting / "0", experiment="arms", summary=None)
    write_job(waiting / "1", experiment="arms", summary="{broken")
    result = run_figures([waiting], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "none finished" in result.stderr and "1 unreadable" in result.stderr
    assert not (tmp_path / "outputs").exists()  # nothing written


def test_cli_writes_every_figure_and_table(cli_out):
    import matplotlib.image

    result, out = cli_out
    assert result.returncode == 0, result.stderr
    for name in FIGURES:
        png, pdf = out / f"{name}.png", out / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500, (name, image.shape)
        assert pdf.read_bytes()[:5] == b"%PDF-", name
    assert "events.out.tfevents.x" in result.stderr  # the corrupt file is named in the warnings


def test_cli_tables(cli_out):
    import csv

    result, out = cli_out
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == N_JOBS  # one per job folder, finished or not; the output folder is not a run
    statuses = sorted(r["status"] for r in rows)
    assert statuses.count("failed_or_running") == 2 and statuses.count("unreadable") == 1
    assert statuses.count("failed") == 1 and statuses.count("interrupted") == 1
    spike_row = next(r for r in rows if r["run_dir"].endswith(os.path.join("arms", "3")))
    assert spike_row["n_grad_norm_spikes"] == "1"
    md = (out / "summary.md").read_text()
    assert "| arms | LSTM | 1 | adding | 50 | 3 | 0.11 |" in md
    assert "| sgd | norm | 1 | 2 | 0 | 1 | 1 | 0.5 |" in md
    numbers = json.loads((out / "summary_numbers.json").read_text())
    assert numbers["counts"]["all"]["total"] == N_JOBS
    assert all(numbers["figures"][name]["status"] == "written" for name in FIGURES)
    fractions = {(d["optimizer"], d["clipping"], d["lr"]): d["fraction"] for d in numbers["divergence"]}
    assert fractions == {("sgd", "none", 0.01): 0.0, ("sgd", "none", 1.0): 1.0, ("sgd", "norm", 0.01): 0.5,
                         ("sgd", "norm", 1.0): 0.5}
