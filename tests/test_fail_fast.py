"""Why a job failed, and `hydra.launcher.fail_fast`: the real CLI with a user's cell that raises inside
training (a typo in a model file), on the local and the joblib launcher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from rnn_gradients.paths import config_dir

from conftest import job_dir, read_summary, run_cli

# A user's cell whose forward raises from its 4th call on, for seed 1 only, until the typo is fixed
# (the file TYPO_FIXED names exists). PL_GLOBAL_SEED is the job's seed (Lightning's seed_everything).
TYPO_CELL = '''
import os
import torch
from rnn_gradients.cells.lstm import LSTM


class FailsAtStep4(torch.nn.Module):
    def __init__(self, core):
        super().__init__()
        self.core, self.calls = core, 0

    def forward(self, x, state=None):
        self.calls += 1
        if self.calls > 3 and os.environ["PL_GLOBAL_SEED"] == "1" and not os.path.exists(os.environ["TYPO_FIXED"]):
            raise FloatingPointError("while stepping the cell:\\noverflow in my_cell.py line 12")
        return self.core(x, state)

    def __getattr__(self, name):  # hidden_size, num_layers, ...: the wrapped torch layer's
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.core, name)


class TypoLSTM(LSTM):
    name = "typo_lstm"

    def build(self, input_size):
        return FailsAtStep4(super().build(input_size))
'''
RUN = ["model._target_=typo_cell.TypoLSTM", "model.hidden_size=8", "data.seq_len=10", "data.batch_size=8",
       "data.val_size=16", "trainer.max_steps=6", "trainer.val_check_interval=3", "trainer.enable_progress_bar=false",
       "callbacks=none", "num_threads=1"]
REASON = "FloatingPointError: while stepping the cell: | overflow in my_cell.py line 12"  # type, message lines joined


@pytest.fixture
def typo_cell(tmp_path, monkeypatch) -> Path:
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "typo_cell.py").write_text(TYPO_CELL)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "user"))
    monkeypatch.setenv("TYPO_FIXED", str(tmp_path / "fixed"))
    return tmp_path / "fixed"


def report(sweep: Path) -> dict:
    return json.loads((sweep / "sweep_report.json").read_text())


def test_a_failed_job_says_why_and_where_its_log_is(tmp_path, typo_cell):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", *RUN, "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    failed = read_summary(job_dir(sweep, 1))
    log_file = job_dir(sweep, 1) / "train.log"
    assert (failed["status"], failed["failure_reason"], failed["log_file"]) == ("failed", REASON, str(log_file))
    assert "Traceback" in log_file.read_text() and "raise FloatingPointError" in log_file.read_text()
    assert read_summary(job_dir(sweep, 0))["status"] == "completed"  # without fail_fast the others run
    row = report(sweep)["jobs"][1]
    assert (row["status"], row["failure_reason"], row["log_file"]) == ("failed", REASON, str(log_file))
    assert f"| {job_dir(sweep, 1).name} | failed |" in (sweep / "sweep_report.md").read_text()
    assert f"{REASON} (log: {log_file})" in (sweep / "sweep_report.md").read_text()
    # the progress line of the job that failed names it, with its exception
    progress = f"Sweep: 2/2 jobs finished (0 diverged, 1 failed) | failed: job {job_dir(sweep, 1).name}: {REASON}"
    assert progress in proc.stdout + proc.stderr
    # --watch on a sweep that has ended: the same line once, and the sweep's exit code
    watched = subprocess.run([sys.executable, "-m", "rnn_gradients.sweep_report", str(sweep), "--watch", "--poll-s", "0.1"],
                             capture_output=True, text=True, timeout=60)
    assert watched.returncode == 1 and watched.stdout.splitlines()[0] == progress, watched.stdout + watched.stderr


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=parallel", "hydra.launcher.n_jobs=1"]], ids=["local", "joblib"])
def test_fail_fast_stops_the_sweep_and_resume_runs_what_did_not_complete(tmp_path, typo_cell, launcher):
    sweep = tmp_path / "sweep"
    sweep_args = ["-m", *launcher, *RUN, "seed=0,1,2,3", f"hydra.sweep.dir={sweep}"]
    proc = run_cli([*sweep_args, "hydra.launcher.fail_fast=true"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    statuses = [read_summary(job_dir(sweep, n))["status"] for n in range(4)]
    assert statuses == ["completed", "failed", "cancelled", "cancelled"], statuses
    for n in (2, 3):  # stopped before building anything: no checkpoint, no events
        assert read_summary(job_dir(sweep, n))["cancelled_because"] == f"job {job_dir(sweep, 1).name} failed (fail_fast)"
        assert not (job_dir(sweep, n) / "checkpoints").exists() and not (job_dir(sweep, n) / "tensorboard").exists()
    counts = report(sweep)["counts"]
    assert (counts["completed"], counts["failed"], counts["cancelled"]) == (1, 1, 2), counts
    assert "2 cancelled" in proc.stdout + proc.stderr

    done = (job_dir(sweep, 0) / "summary.json").read_text()
    typo_cell.touch()  # the user fixes the typo and launches the same sweep again
    again = run_cli([*sweep_args, "hydra.launcher.fail_fast=true", "resume=true"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (job_dir(sweep, 0) / "summary.json").read_text() == done  # completed: skipped, untouched
    assert [read_summary(job_dir(sweep, n))["status"] for n in range(4)] == ["completed"] * 4
    assert report(sweep)["counts"]["completed"] == 4 and len(report(sweep)["jobs"]) == 4


@pytest.mark.parametrize(("overrides", "target"), [
    ([], "LocalLauncher"), (["hydra/launcher=basic"], "LocalLauncher"), (["experiment=arms"], "ParallelLauncher"),
    (["experiment=arms", "hydra/launcher=basic"], "LocalLauncher"), (["hydra/launcher=slurm"], "ResumingSlurmLauncher")])
def test_every_launcher_takes_fail_fast_and_the_experiments_keep_theirs(overrides, target):
    """Hydra's default `basic` is the project's (with fail_fast), without outranking the sweeps'
    `override /hydra/launcher: parallel`; a typo in the key is refused."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, "hydra.launcher.fail_fast=true"], return_hydra_config=True)
        assert cfg.hydra.launcher._target_.rsplit(".", 1)[1] == target and cfg.hydra.launcher.fail_fast is True
        with pytest.raises(ConfigCompositionException):
            compose(config_name="config", overrides=[*overrides, "hydra.launcher.fail_fst=true"], return_hydra_config=True)
