"""Sweeps left alone on the real one-node SLURM (scripts/slurm_local.sh): submitted without waiting and
followed from another shell, a job killed outright (a dead node), and fail-fast."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import job_dir, read_summary
from run_checks import assert_same_grad_flow, assert_same_run
from slurm_jobs import STEPS, Releaser, checkpointed, finish, launch, slurm_ids, submitit_logs, wait_for
from test_fail_fast import TYPO_CELL  # a user's cell that raises inside training for seed 1

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def slurm_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def training_processes(sweep: Path, array_task: int) -> list[int]:
    """The pids of the sweep's job that trains in array task `array_task` (submitit runs the job's function
    in the process srun starts). `scancel --signal=KILL` would not do: slurmstepd then ends the step with
    SIGTERM first, and the job's handler saves a checkpoint, which a dead node never does."""
    found = subprocess.run(["pgrep", "-f", f"submitit.core._submit {sweep}"], capture_output=True, text=True).stdout.split()
    def is_training(pid: str) -> bool:  # not srun (its command line holds the same words) but the python it starts
        argv, environ = (Path(f"/proc/{pid}/{name}").read_bytes().split(b"\0") for name in ("cmdline", "environ"))
        return Path(argv[0].decode()).name != "srun" and f"SLURM_ARRAY_TASK_ID={array_task}".encode() in environ
    return [int(pid) for pid in found if is_training(pid)]


def test_submit_log_out_watch_and_survive_a_dead_node(tmp_path):
    """`hydra.launcher.wait=false` returns once both jobs are queued; `sweep_report --watch`, started in
    its own session as after a log-out, follows them. Job 1's processes are SIGKILLed after a periodic
    checkpoint (no handler runs, as when its node dies) and requeued: it resumes from that checkpoint and
    ends with job 0's weights, curves and grad flow, every step once."""
    sweep = tmp_path / "sweep"
    submit = launch(sweep, f"trainer.max_steps={STEPS}", "trainer.log_every_n_steps=1,10", "hydra.launcher.wait=false")
    output = submit.communicate(timeout=120)[0]
    assert submit.returncode == 0, output[-3000:]
    ids = slurm_ids(sweep)
    assert sorted(ids) == [0, 1] and all(slurm_state(i) in ("PENDING", "RUNNING") for i in ids.values()), output
    assert all(job_id in output for job_id in ids.values()) and str(sweep) in output
    assert f"python -m rnn_gradients.sweep_report {sweep} --watch" in output
    assert json.loads((sweep / ".sweep_slurm_jobs.json").read_text()) == {str(job): i for job, i in ids.items()}

    watcher = subprocess.Popen([sys.executable, "-m", "rnn_gradients.sweep_report", str(sweep), "--watch", "--poll-s", "1"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    wait_for(lambda: checkpointed(job_dir(sweep, 1)), "job 1 to checkpoint", 120, watcher)
    time.sleep(1)  # a few steps past the checkpoint, so the restart repeats them
    pids = training_processes(sweep, array_task=1)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: slurm_state(ids[1]) not in ("RUNNING", "COMPLETING"), "the killed job to end", 60)
    killed_state = slurm_state(ids[1])
    subprocess.run(["scontrol", "requeue", ids[1]], check=True)
    assert read_summary_or_none(job_dir(sweep, 1)) is None  # killed outright: no summary was written

    deadline, release = time.time() + 300, Releaser()
    while watcher.poll() is None:
        assert time.time() < deadline, "--watch did not return"
        release()
        time.sleep(0.5)
    watched = watcher.stdout.read()
    assert watcher.returncode == 0, f"{killed_state}\n{watched[-3000:]}"
    progress = [line for line in watched.splitlines() if line.startswith("Sweep: ")]
    assert progress[-1].startswith("Sweep: 2/2 jobs finished (0 diverged, 0 failed)"), watched
    assert "| completed |" in watched and "missing" not in progress[-1]

    summary = read_summary(job_dir(sweep, 1))
    stopped = summary["resumed_from_step"]
    assert summary["status"] == "completed" and summary["steps"] == STEPS
    assert isinstance(stopped, int) and 0 < stopped < STEPS and stopped % 100 == 0  # checkpoint.every_n_steps=100
    log = (job_dir(sweep, 1) / "train.log").read_text()
    assert "SLURM restart 1 of job" in log and "Received SIG" not in log  # no handler ran
    assert_same_run(job_dir(sweep, 0), job_dir(sweep, 1), STEPS, stopped_at=stopped, b_logs_every=10)
    assert_same_grad_flow(job_dir(sweep, 0), job_dir(sweep, 1))


def read_summary_or_none(run_dir: Path) -> dict | None:
    return read_summary(run_dir) if (run_dir / "summary.json").is_file() else None


def test_fail_fast_cancels_the_pending_jobs_and_resume_runs_them(tmp_path, monkeypatch):
    """Job 0 fails inside training with fail_fast=true: the array's pending jobs are cancelled (SLURM
    says CANCELLED, the report `cancelled`); with the typo fixed, resume=true runs the three that did not
    complete, and the sweep ends complete."""
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "typo_cell.py").write_text(TYPO_CELL)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "user"))
    monkeypatch.setenv("TYPO_FIXED", str(tmp_path / "fixed"))
    sweep = tmp_path / "sweep"
    run = ["model._target_=typo_cell.TypoLSTM", "trainer.max_steps=50", "seed=1,0,2", "hydra.launcher.fail_fast=true"]
    proc = launch(sweep, *run, "hydra.launcher.array_parallelism=1")
    output = finish(proc, 300)
    assert proc.returncode == 1, output[-3000:]
    report = json.loads((sweep / "sweep_report.json").read_text())
    assert [job["status"] for job in report["jobs"]] == ["failed", "cancelled", "cancelled"], report
    failed = report["jobs"][0]
    assert "FloatingPointError: while stepping the cell:" in failed["reason"] and "train.log" in failed["reason"]
    assert f"not started: job {job_dir(sweep, 0).name} failed (fail_fast)" == report["jobs"][1]["reason"]
    assert not list(sweep.glob("1_*")) and not list(sweep.glob("2_*"))  # cancelled before they started
    assert "| failed: job 0_" in submitit_logs(sweep)  # the progress line names the failing job

    (tmp_path / "fixed").touch()
    again = launch(sweep, *run, "resume=true", "hydra.launcher.array_parallelism=2")
    output = finish(again, 300)
    assert again.returncode == 0, output[-3000:]
    report = json.loads((sweep / "sweep_report.json").read_text())
    assert [job["status"] for job in report["jobs"]] == ["completed"] * 3, report
    assert all(read_summary(job_dir(sweep, job))["steps"] == 50 for job in range(3))


def test_a_search_runs_its_trials_on_slurm(tmp_path):
    """hydra/sweeper=optuna with the SLURM launcher: two trials at a time as array tasks, told from their
    job folders (the launcher's results are not read), the study in the sweep folder."""
    sweep = tmp_path / "search"
    proc = launch(sweep, "experiment=lr_search", "trainer.max_steps=30", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2")
    output = finish(proc, 300)
    assert proc.returncode == 0, output[-3000:]
    with sqlite3.connect(sweep / "optuna.db") as con:
        told = con.execute("SELECT t.number, t.state, v.value FROM trials t JOIN trial_values v USING (trial_id) ORDER BY t.number").fetchall()
    assert [(n, s) for n, s, _ in told] == [(n, "COMPLETE") for n in range(4)]
    assert [v for _, _, v in told] == [read_summary(job_dir(sweep, n))["val_normalized_loss"] for n in range(4)]
    assert len({p.name for p in sweep.glob(".submitit/*_1")}) == 2  # two arrays of two tasks
