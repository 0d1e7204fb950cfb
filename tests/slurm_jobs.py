"""The one-node SLURM of scripts/slurm_local.sh as the SLURM tests drive it: a sweep launched as a user
launches it, its jobs' SLURM ids, and requeued jobs released without SLURM's hold."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import cli_env

STEPS = 1200
RUN = [
    "model=lstm", "model.hidden_size=16", "data.seq_len=20", "data.batch_size=16", "data.val_size=64",
    "trainer.enable_progress_bar=false", "trainer.val_check_interval=100", "checkpoint.every_n_steps=100",
    "callbacks.grad_flow.every_n_steps=100", "callbacks.gate_stats.every_n_steps=100",
]
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1"]


def launch(sweep: Path, *overrides: str) -> subprocess.Popen:
    """A SLURM sweep in the background, as a user starts it (the command line, num_threads left at 0)."""
    cmd = [sys.executable, "-m", "rnn_gradients.train", "-m", *LAUNCHER, *RUN, f"hydra.sweep.dir={sweep}", *overrides]
    return subprocess.Popen(cmd, cwd=sweep.parent, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def slurm_ids(sweep: Path) -> dict[int, str]:
    """Hydra job number -> SLURM job id of this sweep's array (the array index is the job number)."""
    out = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i|%K|%o"], capture_output=True, text=True).stdout
    ids = {}
    for line in out.splitlines():
        job_id, task, command = line.split("|", 2)
        if str(sweep) in command:
            ids[int(task) if task.isdigit() else 0] = job_id
    return ids


def wait_for(condition, what: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep ended while waiting for {what}:\n{proc.stdout.read()[-3000:]}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Releaser:
    """Starts requeued jobs without SLURM's ~2-minute hold, but only 3 s after the requeue: a job restarted
    within the second its credential was revoked is killed by slurmd ("Job credential revoked")."""

    def __init__(self) -> None:
        self.held_since: dict[str, float] = {}

    def __call__(self) -> None:
        held = subprocess.run(["squeue", "-h", "-t", "PD", "-o", "%i|%r"], capture_output=True, text=True).stdout
        for line in held.splitlines():
            job_id, reason = line.split("|")
            if reason != "BeginTime":
                continue
            since = self.held_since.setdefault(job_id, time.time())
            if time.time() - since >= 3:
                subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)
                del self.held_since[job_id]


def finish(proc: subprocess.Popen, timeout: float) -> str:
    """Wait for the sweep, releasing requeued jobs early (Releaser)."""
    deadline, release = time.time() + timeout, Releaser()
    while proc.poll() is None:
        assert time.time() < deadline, "the sweep did not finish"
        release()
        time.sleep(0.5)
    return proc.stdout.read()


def checkpointed(run_dir: Path) -> bool:
    return (run_dir / "checkpoints" / "last.ckpt").is_file()


def submitit_logs(sweep: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sweep.glob(".submitit/*/*_log.*"))
