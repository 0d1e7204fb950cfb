"""Resume exactly, survive interruptions and failed jobs, refuse dangerous or impossible input."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import cli_env, job_dir, read_summary, run_cli
from run_checks import assert_same_run, curve

SMALL = [
    "model.hidden_size=16", "data.seq_len=20", "data.batch_size=16", "data.val_size=64", "num_threads=1",
    "trainer.enable_progress_bar=false", "trainer.val_check_interval=10", "trainer.log_every_n_steps=1",
    "checkpoint.every_n_steps=7",
]


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    """Includes the optimizer's and a learning-rate schedule's state (warm-up over the resume point)."""
    full, part = tmp_path / "full", tmp_path / "part"
    sched = ["scheduler=warmup", "scheduler.total_iters=30"]
    assert run_cli([*SMALL, *sched, "trainer.max_steps=40", f"hydra.run.dir={full}"], cwd=tmp_path).returncode == 0
    # the interrupted run must not know its final length: max_steps alone changes, the schedule does not
    assert run_cli([*SMALL, *sched, "trainer.max_steps=23", f"hydra.run.dir={part}"], cwd=tmp_path).returncode == 0
    resumed = run_cli([*SMALL, *sched, "trainer.max_steps=40", f"hydra.run.dir={part}", "ckpt_path=last"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = read_summary(part)
    assert summary["resumed_from_step"] == 23 and summary["steps"] == 40 and summary["status"] == "completed"
    assert_same_run(full, part, 40, stopped_at=23)
    # an explicit file path works as well as `last`
    again = run_cli([*SMALL, *sched, "trainer.max_steps=45", f"hydra.run.dir={tmp_path / 'other'}",
                     f"ckpt_path={full / 'checkpoints' / 'last.ckpt'}"], cwd=tmp_path)
    assert again.returncode == 0 and read_summary(tmp_path / "other")["resumed_from_step"] == 40


def wait_for_training(run_dir: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list((run_dir / "checkpoints").glob("last.ckpt")):
            return
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    raise AssertionError("training did not start")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_exits_cleanly_and_resumes_exactly(tmp_path, signum):
    steps = 400
    run_dir = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "rnn_gradients.train", *SMALL, f"trainer.max_steps={steps}", f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_training(run_dir, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    assert "Traceback" not in stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == signal.Signals(signum).name
    stopped = summary["steps"]
    assert 0 < stopped < steps
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == stopped  # the checkpoint is of the step it stopped at, not an older one
    assert not list(run_dir.rglob("*.tmp")), "no half-written file left behind"

    resumed = run_cli([*SMALL, f"trainer.max_steps={steps}", f"hydra.run.dir={run_dir}", "ckpt_path=last"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert read_summary(run_dir)["resumed_from_step"] == stopped
    full = tmp_path / "full"
    assert run_cli([*SMALL, f"trainer.max_steps={steps}", f"hydra.run.dir={full}"], cwd=tmp_path).returncode == 0
    assert_same_run(full, run_dir, steps, stopped_at=stopped)  # Lightning validates when a run is stopped
    # HParams: the interrupted attempt wrote its outcome at its last step, the resumed one at the end
    assert curve(run_dir, "hparams/steps") == [(stopped, float(stopped)), (steps, float(steps))]


def test_multirun_resume_skips_completed_and_resumes_the_rest(tmp_path):
    sweep = tmp_path / "sweep"
    first = run_cli(["-m", *SMALL, "seed=0,1", "trainer.max_steps=20", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    done = (job_dir(sweep, 0) / "summary.json").read_text()
    # job 1 was "killed" after its step-20 checkpoint: no summary left
    (job_dir(sweep, 1) / "summary.json").unlink()
    again = run_cli(["-m", *SMALL, "seed=0,1", "trainer.max_steps=30", "resume=true", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (job_dir(sweep, 0) / "summary.json").read_text() == done  # skipped, untouched
    job1 = read_summary(job_dir(sweep, 1))
    assert job1["resumed_from_step"] == 20 and job1["steps"] == 30 and job1["status"] == "completed"
    report = json.loads((sweep / "sweep_report.json").read_text())
    assert report["counts"]["completed"] == 2


def test_one_failing_job_does_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *SMALL, "trainer.max_steps=5", f"hydra.sweep.dir={sweep}",
                      "optimizer._target_=torch.optim.NoSuchOptimizer,torch.optim.Adam"], cwd=tmp_path)
    assert result.returncode == 1  # the sweep says something failed ...
    failed, ok = read_summary(job_dir(sweep, 0)), read_summary(job_dir(sweep, 1))
    assert failed["status"] == "failed" and "NoSuchOptimizer" in failed["failure_reason"]
    assert ok["status"] == "completed" and ok["steps"] == 5  # ... but the other job ran
    report = json.loads((sweep / "sweep_report.json").read_text())
    assert report["counts"] == {"completed": 1, "diverged": 0, "failed": 1, "interrupted": 0, "cancelled": 0, "missing": 0, "unreadable": 0}
    table = (sweep / "sweep_report.md").read_text()
    assert "| 0_lstm_adding_T20_s0 | failed |" in table and "NoSuchOptimizer" in table and "| 1_lstm_adding_T20_s0 | completed |" in table


def test_malicious_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"global_step": 1, "payload": Exploit()}))
    result = run_cli([*SMALL, "trainer.max_steps=5", f"paths.output_dir={tmp_path / 'out'}", f"ckpt_path={evil}"], cwd=tmp_path)
    assert result.returncode == 2
    assert not marker.exists(), "the checkpoint's code ran"
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "ckpt_path=" in lines[0] and "not a loadable checkpoint" in lines[0], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "override,key",
    [("paths.output_dir={blocker}/sub", "paths.output_dir"), ("min_free_disk_mb=1000000000", "min_free_disk_mb")],
)
def test_unwritable_or_full_output_is_refused_before_training(tmp_path, override, key):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = run_cli([*SMALL, override.format(blocker=blocker), "trainer.max_steps=5"], cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def _kill_copies(monkeypatch) -> None:
    """Every file copy writes its first 100 bytes, then the process is 'killed' (KeyboardInterrupt)."""
    import shutil

    def killed(source, target, *args) -> None:
        target.write(source.read(100))
        target.flush()
        raise KeyboardInterrupt("killed mid-copy")

    monkeypatch.setattr(shutil, "_fastcopy_sendfile", killed, raising=False)
    monkeypatch.setattr(shutil, "copyfileobj", killed)


def test_last_checkpoint_survives_a_kill_where_lightnings_own_atomic_save_does_not(tmp_path, monkeypatch):
    """Why PeriodicCheckpoint writes through its own temporary file (guards/checkpointing.py): Lightning
    writes a checkpoint to the system temp dir and moves it into place, and from another filesystem
    (node-local /tmp, run dir on shared storage) that move is a copy into the file itself."""
    import tempfile

    import lightning.pytorch as pl
    from lightning.fabric.utilities.cloud_io import _atomic_save
    from lightning.pytorch.demos.boring_classes import BoringModel

    from rnn_gradients.guards.checkpointing import save_last_checkpoint

    other_fs = Path("/dev/shm")
    if not other_fs.is_dir() or os.stat(other_fs).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a temp dir on another filesystem than tmp_path (/dev/shm)")
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0)
    trainer.fit(BoringModel())
    last = save_last_checkpoint(trainer, tmp_path)
    direct = tmp_path / "direct.ckpt"
    _atomic_save({"global_step": 2}, direct)

    monkeypatch.setattr(tempfile, "tempdir", str(other_fs))
    _kill_copies(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _atomic_save({"global_step": 3, "blob": os.urandom(100_000)}, direct)
    with pytest.raises(Exception, match="zip archive"):  # Lightning's own write: truncated in place
        torch.load(direct, weights_only=True)
    with pytest.raises(KeyboardInterrupt):
        save_last_checkpoint(trainer, tmp_path)
    assert torch.load(last, weights_only=True)["global_step"] == 2  # the previous last.ckpt, whole
