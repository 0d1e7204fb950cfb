"""`hydra/sweeper=optuna` through the real CLI: the study is an SQLite database read back with sqlite3, each
trial's value is its job's summary, a second launch continues the numbering, a diverged trial is a bad
trial, a failed one a failed trial (fail_fast stops the search), and a launcher killed mid-trial is
picked up by the next launch."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import cli_env, job_dir, read_summary, run_cli
from test_fail_fast import TYPO_CELL

SEARCH = ["-m", "experiment=lr_search", "model.hidden_size=8", "trainer.max_steps=30", "trainer.val_check_interval=10",
          "data.val_size=16", "callbacks=none", "trainer.enable_progress_bar=false", "num_threads=1"]
LOCAL = ["hydra/launcher=basic", "hydra.sweeper.n_jobs=1"]


def trials(sweep: Path) -> list[tuple[int, str, float | None]]:
    """(number, state, value) of every trial, read from the database file itself."""
    db = sweep / "optuna.db"
    assert db.read_bytes()[:16] == b"SQLite format 3\x00"
    with sqlite3.connect(db) as con:
        return con.execute("SELECT t.number, t.state, v.value FROM trials t LEFT JOIN trial_values v USING (trial_id) "
                           "ORDER BY t.number").fetchall()


def resolved(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config_resolved.yaml").read_text())


def searched(run_dir: Path) -> tuple[float, float]:
    cfg = resolved(run_dir)
    return cfg["optimizer"]["lr"], cfg["clipping"]["threshold"]


@pytest.mark.parametrize("launcher", [LOCAL, ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]],
                         ids=["local", "joblib"])
def test_a_search_is_a_study_that_the_same_command_continues(tmp_path, launcher):
    sweep = tmp_path / "search"
    command = [*SEARCH, *launcher, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}"]
    first = run_cli(command, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [(n, state) for n, state, _ in trials(sweep)] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    for number, _, value in trials(sweep):  # the objective is the job's final validation normalized loss
        assert value == read_summary(job_dir(sweep, number))["val_normalized_loss"]
    kept = {n: (job_dir(sweep, n) / "summary.json").read_bytes() for n in range(3)}

    again = run_cli(command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [n for n, _, _ in trials(sweep)] == list(range(6)) and {s for _, s, _ in trials(sweep)} == {"COMPLETE"}
    assert {n: (job_dir(sweep, n) / "summary.json").read_bytes() for n in range(3)} == kept  # no folder overwritten
    assert sorted(int(p.parent.name.split("_")[0]) for p in sweep.glob("*/.hydra")) == list(range(6))
    points = [searched(job_dir(sweep, n)) for n in range(6)]
    assert len(set(points)) == 6  # the continued study samples new points
    assert all(1e-4 <= lr <= 3e-2 and 0.1 <= threshold <= 10 for lr, threshold in points)
    report = (sweep / "sweep_report.md").read_text()
    assert all(f"| {job_dir(sweep, n).name} | completed |" in report for n in range(6))
    best = min(trials(sweep), key=lambda t: t[2])
    assert f"Best trial {best[0]}: val_normalized_loss = {best[2]:g}" in again.stdout + again.stderr
    if launcher is LOCAL:  # HParams shows a trial like any job: its own lr and threshold
        hparams = yaml.safe_load(next((job_dir(sweep, 4) / "tensorboard").glob("**/hparams.yaml")).read_text())
        assert (hparams["lr"], hparams["clip_threshold"]) == searched(job_dir(sweep, 4))
        # and the figures' tables: one row per trial, with its lr and threshold
        figures = subprocess.run([sys.executable, "-m", "rnn_gradients.figures", str(sweep), "--out", str(tmp_path / "fig")],
                                 capture_output=True, text=True, timeout=300)
        assert figures.returncode == 0, figures.stderr[-2000:]
        rows = sorted(csv.DictReader((tmp_path / "fig" / "summary.csv").open()), key=lambda r: int(Path(r["run_dir"]).name.split("_")[0]))
        assert [(float(r["lr"]), float(r["clip_threshold"])) for r in rows] == points


def test_a_diverged_trial_is_a_bad_trial_not_a_crash(tmp_path):
    sweep = tmp_path / "search"
    proc = run_cli([*SEARCH, *LOCAL, "callbacks=default", "callbacks.divergence.warmup_steps=5", "arm=rnn", "optimizer=sgd",
                    "optimizer.lr=choice(50.0)", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]  # diverging is a result, as in a grid
    assert trials(sweep) == [(0, "COMPLETE", 10.0), (1, "COMPLETE", 10.0)]  # hydra.sweeper.diverged_value
    assert [read_summary(job_dir(sweep, n))["status"] for n in range(2)] == ["diverged", "diverged"]


def test_failed_trials_fail_and_fail_fast_stops_the_search(tmp_path, monkeypatch):
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "typo_cell.py").write_text(TYPO_CELL)  # raises inside training for seed 1
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "user"))
    monkeypatch.setenv("TYPO_FIXED", str(tmp_path / "fixed"))
    broken = [*SEARCH, *LOCAL, "model._target_=typo_cell.TypoLSTM", "seed=1", "hydra.sweeper.n_trials=3"]
    proc = run_cli([*broken, f"hydra.sweep.dir={tmp_path / 'on'}"], cwd=tmp_path)
    assert proc.returncode == 1 and [s for _, s, _ in trials(tmp_path / "on")] == ["FAIL"] * 3
    proc = run_cli([*broken, "hydra.launcher.fail_fast=true", f"hydra.sweep.dir={tmp_path / 'stop'}"], cwd=tmp_path)
    assert proc.returncode == 1 and trials(tmp_path / "stop") == [(0, "FAIL", None)]  # no trial asked after it
    statuses = [job["status"] for job in json.loads((tmp_path / "stop" / "sweep_report.json").read_text())["jobs"]]
    assert statuses == ["failed", "cancelled", "cancelled"]


def test_a_trial_cut_off_with_its_launcher_is_finished_by_the_next_launch(tmp_path):
    sweep = tmp_path / "search"
    command = [*SEARCH, *LOCAL, "trainer.max_steps=600", "checkpoint.every_n_steps=50", "hydra.sweeper.n_trials=2",
               f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen([sys.executable, "-m", "rnn_gradients.train", *command], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not (job_dir(sweep, 1) / "checkpoints" / "last.ckpt").is_file():
        assert proc.poll() is None and time.time() < deadline, "trial 1 never checkpointed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its in-process job, at once
    proc.wait()
    assert [(n, s) for n, s, _ in trials(sweep)] == [(0, "COMPLETE"), (1, "RUNNING")]
    params = searched(job_dir(sweep, 1))

    again = run_cli([*command[:-2], "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Trial 1 did not finish: running it again (resume=true)" in again.stdout + again.stderr
    assert [(n, s) for n, s, _ in trials(sweep)] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    summary = read_summary(job_dir(sweep, 1))
    assert summary["status"] == "completed" and summary["steps"] == 600 and summary["resumed_from_step"] > 0
    assert searched(job_dir(sweep, 1)) == params and trials(sweep)[1][2] == summary["val_normalized_loss"]
