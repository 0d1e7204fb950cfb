"""The real CLI, in subprocesses: `python -m rnn_gradients.train [...]` and its `-m` multiruns."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY, job_dir, name_of, read_summary, run_cli

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
    children = list(path.iterdir())
    assert len(children) == 1, children
    return children[0]


def read_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event file under {run_dir / 'tensorboard'}"
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


# ----------------------------------------------------------------------------- (a) the 12-job sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("sweep")
    out = cwd / "out"
    proc = run_cli(
        ["-m", "model=rnn,lstm", "data=copy,adding", "clipping=none,norm,value", *TINY, f"paths.output_dir={out}"],
        cwd=cwd,
    )
    return proc, cwd, out


def test_sweep_layout(sweep):
    proc, cwd, out = sweep
    assert_ok(proc)
    assert sorted(p.name for p in cwd.iterdir()) == ["out"]  # nothing written outside paths.output_dir
    assert sorted(p.name for p in out.iterdir()) == ["multirun"]
    stamp = only_child(out / "multirun")
    assert TIMESTAMP.match(stamp.name), stamp.name
    jobs = sorted((p for p in stamp.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0]))
    assert [int(p.name.split("_")[0]) for p in jobs] == list(range(12))
    for job in jobs:
        assert (job / ".hydra" / "config.yaml").is_file()
        assert job.name.split("_", 1)[1] == name_of(read_summary(job))  # the folder says what the job is


def test_sweep_summaries(sweep):
    proc, _, out = sweep
    assert_ok(proc)
    stamp = only_child(out / "multirun")
    seen = set()
    for job in range(12):
        run_dir = job_dir(stamp, job)
        s = read_summary(run_dir)
        cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        # the summary describes the job Hydra actually ran
        assert cfg.model._target_.rsplit(".", 1)[-1].lower() == s["model"]  # rnn_gradients.cells.lstm.LSTM
        assert cfg.data._target_.split(".")[-2] == s["task"]  # rnn_gradients.tasks.copy.Copy
        assert s["clipping"] == cfg.clipping.mode
        overrides = OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")
        assert f"model={s['model']}" in overrides
        assert f"data={s['task']}" in overrides
        assert f"clipping={s['clipping']}" in overrides
        seen.add((s["model"], s["task"], s["clipping"]))

        assert s["arm"] == expected_arm(s["model"], s["clipping"])
        assert s["seq_len"] == T and cfg.data.seq_len == T
        assert s["hidden_size"] == 16
        assert s["steps"] == MAX_STEPS
        assert s["seed"] == 0
        assert s["status"] == "completed" and s["diverged"] is False
        assert s["clip_threshold"] == cfg.clipping.threshold
        assert (s["clip_threshold"] is None) == (s["clipping"] == "none")
        assert s["baseline_loss"] == pytest.approx(baseline(s["task"], T), rel=1e-12)
        for key in NUMBERS:
            assert isinstance(s[key], float) and math.isfinite(s[key]), (job, key, s[key])
        assert s["val_normalized_loss"] == pytest.approx(s["val_loss"] / s["baseline_loss"], rel=1e-5)
        assert s["train_normalized_loss"] == pytest.approx(s["train_loss"] / s["baseline_loss"], rel=1e-5)
        assert 0.0 <= s["val_accuracy"] <= 1.0
    assert seen == set(itertools.product(["rnn", "lstm"], ["copy", "adding"], ["none", "norm", "value"]))


def test_sweep_tensorboard(sweep):
    proc, _, out = sweep
    assert_ok(proc)
    stamp = only_child(out / "multirun")
    for job in range(12):
        run_dir = job_dir(stamp, job)
        s = read_summary(run_dir)
        scalars = read_scalars(run_dir)
        for tag in ("train/loss", "train/normalized_loss", "val/loss", "val/normalized_loss"):
            assert tag in scalars, (job, tag, sorted(scalars))
        # train/* every step (log_every_n_steps=1), val/* every val_check_interval=2 steps
        assert len(scalars["train/loss"]) == MAX_STEPS
        assert len(scalars["val/loss"]) == MAX_STEPS // 2
        b = baseline(s["task"], T)
        for split in ("train", "val"):
            loss, norm = scalars[f"{split}/loss"], scalars[f"{split}/normalized_loss"]
            assert loss.keys() == norm.keys()
            for step in loss:
                assert math.isfinite(loss[step])
                assert norm[step] == pytest.approx(loss[step] / b, rel=1e-5)
        # the summary's val loss is the last validation logged
        assert s["val_loss"] == pytest.approx(scalars["val/loss"][max(scalars["val/loss"])], rel=1e-6)


# ----------------------------------------------------------------------------- (b, c, d) runs and seeds


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """One multirun: seeds 0, 1 and 0 again, under the arm=lstm_clip preset."""
    cwd = tmp_path_factory.mktemp("seeds")
    out = cwd / "out"
    proc = run_cli(["-m", "arm=lstm_clip", "seed=0,1,0", *TINY, f"paths.output_dir={out}"], cwd=cwd)
    assert_ok(proc)
    stamp = only_child(out / "multirun")
    return [read_summary(job_dir(stamp, i)) for i in range(3)]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("single")
    out = cwd / "out"
    proc = run_cli(["arm=lstm_clip", "seed=0", *TINY, f"paths.output_dir={out}"], cwd=cwd)
    return proc, cwd, out


def test_single_run_layout(single):
    proc, cwd, out = single
    assert_ok(proc)
    assert sorted(p.name for p in cwd.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["runs"]
    run_dir = only_child(out / "runs")
    stamp, name = run_dir.name[:26], run_dir.name[27:]
    s = read_summary(run_dir)
    assert TIMESTAMP.match(stamp) and name == name_of(s), run_dir.name
    assert s["steps"] == MAX_STEPS and s["status"] == "completed"
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


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


# ----------------------------------------------------------------------------- (e) bad input
