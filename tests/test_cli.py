"""The real CLI, in subprocesses: `python -m rnn_gradients.train [...]` and its `-m` multiruns."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY, job_dir, name_of, read_summary, run_cli
from rnn_gradients import contract

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}-\d{6}$")
T = 10  # data.seq_len in TINY
MAX_STEPS = 4  # trainer.max_steps in TINY
NUMBERS = ("train_loss", "train_normalized_loss", "val_loss", "val_normalized_loss", "val_accuracy", "baseline_loss")


def expected_arm(model: str, clipping: str) -> str:
    return model.upper() + ("" if clipping == "none" else "+clip")


def baseline(task: str, seq_len: int) -> float:
    return 10 * math.log(8) / (seq_len + 20) if task == "copy" else 1 / 6


def assert_ok(proc) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stdout + proc.stderr


def only_child(path: Path) -> Path:
    (child,) = list(path.iterdir())
    return child


def read_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*")), f"no TensorBoard event file under {run_dir}"
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


# ----------------------------------------------------------------------------- (a) the smoke sweeps, job by job
# The four sweeps of `make reproduce PROFILE=smoke` (conftest.smoke, shared with test_pipeline.py), as their
# grids are written in conf/experiment/*.yaml and conf/profile/smoke.yaml:
SMOKE_STEPS = 20  # profile.steps.*
SMOKE_HIDDEN = 16  # profile.hidden_size
LOG_EVERY = 10  # trainer.log_every_n_steps (conf/trainer/cpu.yaml)
VAL_EVERY = 10  # profile.val_check_interval
# `arm=` preset -> (arm label, model, clipping, the run name's part for it), as conf/arm/*.yaml define them
ARM_PRESETS = {
    "rnn": ("RNN", "rnn", "none", "rnn"),
    "lstm": ("LSTM", "lstm", "none", "lstm"),
    "lstm_clip": ("LSTM+clip", "lstm", "norm", "lstm_normclip"),
    "lstm_no_carry": ("LSTM (no cell carry)", "lstm", "none", "lstm_nocarry"),
    "irnn": ("IRNN", "irnn", "none", "irnn"),
    "orthogonal_rnn": ("RNN (orthogonal)", "orthogonal_rnn", "none", "orthogonal_rnn"),
    "orthogonal_rnn_modrelu": ("RNN (orthogonal, modReLU)", "orthogonal_rnn", "none", "orthogonal_rnn_modrelu"),
    "gru": ("GRU", "gru", "none", "gru"),
    "lstm_chrono": ("LSTM (chrono)", "lstm", "none", "lstm_chrono"),
}
# experiment -> every grid point of its sweep (one job each: 16, 12, 2 and 14), in the terms of its overrides
SMOKE_GRIDS = {
    "arms": set(itertools.product(["rnn", "lstm_no_carry", "lstm", "lstm_clip"], ["adding", "copy"], [10, 20])),
    "exploding": set(itertools.product(["sgd", "adam"], [0.01, 1.0], ["none", "norm", "value"])),
    "forget_bias": {(0.0,), (5.0,)},
    "cures": set(itertools.product(["rnn", "irnn", "orthogonal_rnn", "orthogonal_rnn_modrelu", "gru", "lstm",
                                    "lstm_chrono"], ["adding", "copy"], [10])),
}


def smoke_jobs(smoke) -> dict[str, list[Path]]:
    """Each experiment's job folders, in job-number order."""
    assert_ok(smoke.proc)
    (root,) = (smoke.outputs / "reproduce").iterdir()
    return {experiment: sorted((p for p in (root / experiment).iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0]))
            for experiment in SMOKE_GRIDS}


def overrides_of(run_dir: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))


def grid_point(experiment: str, s: dict, overrides: dict[str, str]) -> tuple:
    """The job's point of its sweep's grid, from its overrides, after checking its summary says the same."""
    if experiment in ("arms", "cures"):
        label, model, clipping, _ = ARM_PRESETS[overrides["arm"]]
        assert (s["arm"], s["model"], s["clipping"]) == (label, model, clipping)
        assert s["task"] == overrides["data"] and s["seq_len"] == int(overrides["data.seq_len"])
        return overrides["arm"], s["task"], s["seq_len"]
    assert (s["model"], s["task"], s["seq_len"]) == ("lstm", "adding", 100)  # conf/experiment/<experiment>.yaml
    assert s["arm"] == expected_arm(s["model"], s["clipping"])
    if experiment == "exploding":
        assert s["optimizer"] == overrides["optimizer"] and s["clipping"] == overrides["clipping"]
        assert s["lr"] == float(overrides["optimizer.lr"])
        return s["optimizer"], s["lr"], s["clipping"]
    assert s["forget_bias"] == float(overrides["model.forget_bias"])
    return (s["forget_bias"],)


def run_name_of(experiment: str, run_dir: Path, s: dict) -> str:
    """`lstm_nocarry_copy_T20_s0`: the arm preset's part where the job has one, else model and clipping."""
    part = ARM_PRESETS[overrides_of(run_dir)["arm"]][3] if experiment in ("arms", "cures") else None
    return name_of(s) if part is None else f"{part}_{s['task']}_T{s['seq_len']}_s{s['seed']}"


def test_sweep_layout(smoke):
    jobs = smoke_jobs(smoke)
    cwd = smoke.outputs.parent
    assert sorted(p.name for p in cwd.iterdir()) == ["outputs"]  # nothing written outside paths.output_dir
    assert sorted(p.name for p in smoke.outputs.iterdir()) == ["figures", "reproduce"]
    for experiment, folders in jobs.items():
        assert [int(p.name.split("_")[0]) for p in folders] == list(range(len(SMOKE_GRIDS[experiment]))), experiment
        for job in folders:
            assert (job / ".hydra" / "config.yaml").is_file()
            s = read_summary(job)
            assert job.name.split("_", 1)[1] == run_name_of(experiment, job, s)  # the folder says what the job is


def test_sweep_summaries(smoke):
    for experiment, folders in smoke_jobs(smoke).items():
        seen = set()
        for run_dir in folders:
            s = read_summary(run_dir)
            cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
            overrides = overrides_of(run_dir)
            where = (experiment, run_dir.name)
            # the summary describes the job Hydra actually ran
            assert cfg.model._target_.split(".")[-2] == s["model"], where  # rnn_gradients.cells.lstm.LSTM
            assert cfg.data._target_.split(".")[-2] == s["task"], where  # rnn_gradients.tasks.copy.Copy
            assert s["clipping"] == cfg.clipping.mode and s["seq_len"] == cfg.data.seq_len, where
            assert (overrides["experiment"], overrides["profile"]) == (experiment, "smoke")
            assert s["experiment"] == experiment and s["seed"] == int(overrides["seed"]) == 0
            seen.add(grid_point(experiment, s, overrides))

            assert s["hidden_size"] == cfg.model.hidden_size == SMOKE_HIDDEN
            assert s["clip_threshold"] == cfg.clipping.threshold
            assert (s["clip_threshold"] is None) == (s["clipping"] == "none")
            assert s["baseline_loss"] == pytest.approx(baseline(s["task"], s["seq_len"]), rel=1e-12)
            # jobs of the exploding sweep may diverge (stopping early); those of the other sweeps train to the end
            assert s["status"] in (("completed", "diverged") if experiment == "exploding" else ("completed",)), where
            assert s["diverged"] is (s["status"] == "diverged"), where
            assert s["steps"] == (s["diverged_at_step"] if s["diverged"] else SMOKE_STEPS), where
            if s["status"] == "completed":
                for key in NUMBERS:
                    assert isinstance(s[key], float) and math.isfinite(s[key]), (where, key, s[key])
            assert s["val_normalized_loss"] == pytest.approx(s["val_loss"] / s["baseline_loss"], rel=1e-5)
            assert s["train_normalized_loss"] == pytest.approx(s["train_loss"] / s["baseline_loss"], rel=1e-5)
            assert 0.0 <= s["val_accuracy"] <= 1.0
        assert seen == SMOKE_GRIDS[experiment], experiment


def test_sweep_tensorboard(smoke):
    for experiment, folders in smoke_jobs(smoke).items():
        for run_dir in folders:
            s = read_summary(run_dir)
            scalars = read_scalars(run_dir)
            where = (experiment, run_dir.name)
            for tag in ("train/loss", "train/normalized_loss", "val/loss", "val/normalized_loss"):
                assert tag in scalars, (where, tag, sorted(scalars))
            # train/* every LOG_EVERY steps, val/* every VAL_EVERY; both at the last step, also when it is off
            # that cadence (a divergence stops the run, and a closing validation follows)
            assert sorted(scalars["train/loss"]) == sorted({*range(LOG_EVERY, s["steps"] + 1, LOG_EVERY), s["steps"]}), where
            assert sorted(scalars["val/loss"]) == sorted({*range(VAL_EVERY, s["steps"] + 1, VAL_EVERY), s["steps"]}), where
            b = baseline(s["task"], s["seq_len"])
            for split in ("train", "val"):
                loss, norm = scalars[f"{split}/loss"], scalars[f"{split}/normalized_loss"]
                assert loss.keys() == norm.keys()
                for step in loss:
                    assert math.isfinite(loss[step]) or s["diverged"]
                    assert norm[step] == pytest.approx(loss[step] / b, rel=1e-5)
            # the summary's losses are the last ones logged
            assert s["val_loss"] == pytest.approx(scalars["val/loss"][s["steps"]], rel=1e-6), where
            assert s["train_loss"] == pytest.approx(scalars["train/loss"][s["steps"]], rel=1e-6), where


# ----------------------------------------------------------------------------- (b, c, d) runs and seeds


@pytest.fixture(scope="module")
def seeds_sweep(tmp_path_factory) -> tuple[Path, Path]:
    """One multirun of the basic launcher (its jobs one after another, in one process): seeds 0, 1 and 0
    again, under the arm=lstm_clip preset, into Hydra's default sweep folder; returns where it ran and its
    paths.output_dir."""
    cwd = tmp_path_factory.mktemp("seeds")
    out = cwd / "out"
    proc = run_cli(["-m", "arm=lstm_clip", "seed=0,1,0", *TINY, f"paths.output_dir={out}"], cwd=cwd)
    assert_ok(proc)
    return cwd, out


@pytest.fixture(scope="module")
def seeds(seeds_sweep) -> list[dict]:
    _, out = seeds_sweep
    stamp = only_child(out / "multirun")
    return [read_summary(job_dir(stamp, i)) for i in range(3)]


def test_multirun_layout(seeds_sweep):
    cwd, out = seeds_sweep
    assert sorted(p.name for p in cwd.iterdir()) == ["out"]  # nothing written outside paths.output_dir
    assert sorted(p.name for p in out.iterdir()) == ["multirun"]
    stamp = only_child(out / "multirun")
    assert TIMESTAMP.match(stamp.name), stamp.name
    jobs = sorted((p for p in stamp.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0]))
    assert [int(p.name.split("_")[0]) for p in jobs] == [0, 1, 2]
    for job in jobs:
        assert (job / ".hydra" / "config.yaml").is_file()
        assert job.name.split("_", 1)[1] == name_of(read_summary(job))  # the folder says what the job is
    assert [p.name.split("_", 1)[1] for p in jobs] == [f"lstm_normclip_adding_T{T}_s{seed}" for seed in (0, 1, 0)]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("single")
    out = cwd / "out"
    proc = run_cli(["arm=lstm_clip", "seed=0", *TINY, f"paths.output_dir={out}"], cwd=cwd)
    return proc, cwd, out


def test_single_run_layout(single):
    proc, cwd, out = single
    assert_ok(proc)
    assert [p.name for p in cwd.iterdir()] == ["out"] and [p.name for p in out.iterdir()] == ["runs"]
    run_dir = only_child(out / "runs")
    stamp, name = run_dir.name[:26], run_dir.name[27:]
    s = read_summary(run_dir)
    assert TIMESTAMP.match(stamp) and name == name_of(s), run_dir.name
    assert s["steps"] == MAX_STEPS and s["status"] == "completed" and (run_dir / ".hydra" / "config.yaml").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    (hparams,) = [yaml.safe_load(f.read_text()) for f in (run_dir / "tensorboard").rglob("hparams.yaml")]  # log_hyperparams
    assert list(hparams) == list(contract.HPARAMS) and (hparams["arm"], hparams["clipping"], hparams["seed"]) == ("LSTM+clip", "norm", 0.0)


def test_lightning_lines_print_once_and_reach_train_log(single):
    """Lightning's own messages (e.g. 'GPU available: ...') once on the console, in Hydra's format, and in the
    run's train.log (Lightning loads inside the job, after Hydra configured logging)."""
    proc, _, out = single
    assert_ok(proc)
    console = [line for line in (proc.stdout + proc.stderr).splitlines() if "GPU available:" in line]
    assert len(console) == 1, console
    assert "[lightning.pytorch" in console[0]
    train_log = (only_child(out / "runs") / "train.log").read_text()
    assert train_log.count("GPU available:") == 1


def test_summary_train_loss_when_last_step_is_not_a_validation_step(tmp_path):
    """Training stops between two validations (3 steps, validation every 2), so train() runs a closing
    validation, which starts Lightning's callback_metrics afresh; the summary's train loss must still be
    the last step's, as written to TensorBoard."""
    out = tmp_path / "out"
    overrides = [*TINY, "trainer.max_steps=3", "trainer.val_check_interval=2"]  # TINY logs every step
    proc = run_cli(["model=rnn", *overrides, f"paths.output_dir={out}"], cwd=tmp_path)
    assert_ok(proc)
    run_dir = only_child(out / "runs")
    s = read_summary(run_dir)
    scalars = read_scalars(run_dir)
    assert s["steps"] == 3
    assert sorted(scalars["train/loss"]) == [1, 2, 3]  # events carry the optimizer step
    assert s["train_loss"] == pytest.approx(scalars["train/loss"][3], rel=1e-6)
    assert s["train_normalized_loss"] == pytest.approx(s["train_loss"] / s["baseline_loss"], rel=1e-5)
    assert sorted(scalars["val/loss"]) == [2, 3]  # the validation at step 2 and the closing one at step 3
    assert s["val_loss"] == pytest.approx(scalars["val/loss"][3], rel=1e-6)


def test_arm_preset_lstm_clip(single, seeds):
    proc, _, out = single
    assert_ok(proc)
    run_dir = only_child(out / "runs")
    for s in [read_summary(run_dir), *seeds]:
        assert s["arm"] == "LSTM+clip"
        assert s["model"] == "lstm"
        assert s["clipping"] == "norm"
        assert s["clip_threshold"] == 1.0
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert cfg.model._target_ == "rnn_gradients.cells.lstm.LSTM" and cfg.clipping.mode == "norm"


def test_seeds_differ_and_repeat(seeds):
    s0, s1, s0_again = seeds
    assert [s["seed"] for s in seeds] == [0, 1, 0]
    assert s0["train_loss"] != s1["train_loss"]
    assert s0["val_loss"] != s1["val_loss"]
    for key in NUMBERS:
        assert s0[key] == s0_again[key], key


def test_single_run_reproduces_sweep_job(single, seeds):
    """Same seed, separate process, run vs multirun mode: identical numbers."""
    proc, _, out = single
    assert_ok(proc)
    s = read_summary(only_child(out / "runs"))
    for key in NUMBERS:
        assert s[key] == seeds[0][key], key
