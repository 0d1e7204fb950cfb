"""`python -m rnn_gradients.evaluate` on runs the real CLI trained: at the trained length it gives the run's
own last validation loss and its last grad_flow.npz row; at longer lengths, from another checkpoint, on a
fresh validation set; eval/ scalars beside the run's untouched event files; refusals in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import job_dir, read_summary, run_cli
from rnn_gradients import contract

TRAIN = ["model=lstm", "model.hidden_size=8", "data=adding", "data.seq_len=10", "data.batch_size=16", "data.val_size=300",
         "trainer.max_steps=30", "trainer.val_check_interval=10", "callbacks.grad_flow.every_n_steps=10",
         "trainer.enable_progress_bar=false", "num_threads=1"]


def evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnn_gradients.evaluate", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two seeds of one tiny LSTM (a sweep), and one with another hidden size."""
    root = tmp_path_factory.mktemp("evaluate")
    sweep = run_cli(["-m", *TRAIN, "seed=0,1", f"hydra.sweep.dir={root / 'sweep'}"], cwd=root)
    wider = run_cli([*TRAIN, "model.hidden_size=16", f"hydra.run.dir={root / 'wider'}"], cwd=root)
    assert sweep.returncode == 0 and wider.returncode == 0, sweep.stderr[-2000:] + wider.stderr[-2000:]
    return root


def records(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / contract.EVAL_FILE).read_text())["records"]


def test_at_the_trained_length_it_is_the_runs_own_numbers_and_it_goes_longer(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(job_dir(runs / "sweep", 0), run)
    events = {p.name: p.read_bytes() for p in (run / "tensorboard").iterdir()}
    proc = evaluate(str(run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_length = {r["seq_len"]: r for r in records(run)}
    assert sorted(by_length) == [10, 20, 40]  # the trained T, 2T and 4T
    summary, flow = read_summary(run), np.load(run / contract.GRAD_FLOW_FILE)
    trained = by_length[10]
    assert trained["step"] == 30 and abs(trained["loss"] - summary["val_loss"]) <= 1e-6
    assert trained["normalized_loss"] == pytest.approx(summary["val_normalized_loss"], abs=1e-6)
    assert trained["log10_ratio"] == {"h": contract.log10_ratio(flow["h"][-1]), "c": contract.log10_ratio(flow["c"][-1])}
    assert trained["command"].endswith(f"-m rnn_gradients.evaluate {run}")
    assert by_length[40]["normalized_loss"] != trained["normalized_loss"]
    # the eval/ scalars at the checkpoint's step, in a new event file; the run's own files untouched
    assert {p.name: p.read_bytes() for p in (run / "tensorboard").iterdir() if p.name in events} == events
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars(contract.eval_tag(40, "normalized_loss"))] == [
        (30, pytest.approx(by_length[40]["normalized_loss"], rel=1e-6))]
    assert [e.step for e in acc.Scalars(contract.TRAIN_LOSS)][-1] == 30

    again = evaluate(str(run), "--seq-len", "20", "--val-seed", "7", "--val-size", "100")
    assert again.returncode == 0, again.stderr[-3000:]
    fresh = [r for r in records(run) if r["val_seed"] == 7]
    assert len(records(run)) == 4 and [(r["seq_len"], r["val_size"]) for r in fresh] == [(20, 100)]
    assert fresh[0]["loss"] != by_length[20]["loss"]  # another validation set


def test_any_checkpoint_and_a_whole_sweep(runs, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(runs / "sweep", sweep)
    other = job_dir(sweep, 1) / "checkpoints" / "last.ckpt"
    proc = evaluate(str(job_dir(sweep, 0)), "--ckpt", str(other), "--seq-len", "10")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = records(job_dir(sweep, 0))
    assert record["checkpoint"] == str(other) and abs(record["loss"] - read_summary(job_dir(sweep, 1))["val_loss"]) <= 1e-6

    proc = evaluate(str(sweep), "--seq-len", "10,20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job in (0, 1):
        trained = next(r for r in records(job_dir(sweep, job)) if r["seq_len"] == 10 and r["checkpoint"].startswith(str(job_dir(sweep, job))))
        assert abs(trained["loss"] - read_summary(job_dir(sweep, job))["val_loss"]) <= 1e-6
    # the figures pick eval.json up: the eval table (median over the seeds' own records) and the figure
    figures = subprocess.run([sys.executable, "-m", "rnn_gradients.figures", str(sweep), "--out", str(tmp_path / "fig")],
                             capture_output=True, text=True, timeout=300)
    assert figures.returncode == 0, figures.stderr[-2000:]
    at_20 = [next(r for r in records(job_dir(sweep, job)) if r["seq_len"] == 20) for job in (0, 1)]
    median = float(np.median([r["normalized_loss"] for r in at_20]))
    row = next(line for line in (tmp_path / "fig" / "summary.md").read_text().splitlines() if line.startswith("| (none) | LSTM | adding | 10 | 20 |"))
    assert row.split(" | ")[5:7] == ["2", f"{median:.4g}"], row
    assert (tmp_path / "fig" / "length_generalization.png").is_file()


def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(job_dir(runs / "sweep", 0), run)
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    bare = tmp_path / "bare"
    shutil.copytree(run, bare)
    shutil.rmtree(bare / "checkpoints")
    wider = runs / "wider" / "checkpoints" / "last.ckpt"
    cases = [
        ([str(tmp_path / "empty")], f"path='{tmp_path / 'empty'}' holds no run (no config_resolved.yaml, and no completed job folder holding one)"),
        ([str(bare)], f"--ckpt='{bare}/checkpoints/last.ckpt' is not allowed: there is no file {bare}/checkpoints/last.ckpt "
                      "(the run saved no checkpoint; pass --ckpt <file>)"),
        ([str(run), "--seq-len", "1"], "--seq-len=1 is not allowed: --seq-len must be an integer >= 2 (the adding task's "
                                       "minimum: one marker in each half)"),
        ([str(run), "--ckpt", str(tmp_path / "garbage.ckpt")],
         f"--ckpt='{tmp_path / 'garbage.ckpt'}' is not allowed: {tmp_path / 'garbage.ckpt'} is not a loadable checkpoint (UnpicklingError:"),
        ([str(run), "--ckpt", str(wider)], f"--ckpt='{wider}' is not allowed: its weights do not fit the run's config ({run}/config_resolved.yaml)"),
    ]
    before = sorted(p for p in tmp_path.rglob("*"))
    for args, expected in cases:
        proc = evaluate(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), (args, proc.stderr)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written
