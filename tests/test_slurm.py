"""`hydra/launcher=slurm` against a real one-node SLURM (scripts/slurm_local.sh): preemption, requeue,
time limits and cancellation, each ending in the run an uninterrupted job would have produced."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import cli_env, job_dir, read_summary, run_cli
from run_checks import assert_same_grad_flow, assert_same_run
from slurm_jobs import RUN, STEPS, Releaser, checkpointed, finish, launch, slurm_ids, submitit_logs, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def test_preempted_and_requeued_jobs_resume_exactly(tmp_path):
    """Job 0 gets submitit's preemption signal (USR2), job 1 `scontrol requeue` (what an administrator,
    a node failure or PreemptMode=REQUEUE does), job 2 runs undisturbed and logs every step: otherwise the
    same config, so all three must end with the same weights, curves and grad flow."""
    sweep = tmp_path / "sweep"
    proc = launch(sweep, f"trainer.max_steps={STEPS}", "trainer.log_every_n_steps=10,10,1")
    wait_for(lambda: checkpointed(job_dir(sweep, 0)) and checkpointed(job_dir(sweep, 1)), "jobs 0 and 1 to checkpoint", 120, proc)
    ids = slurm_ids(sweep)
    subprocess.run(["scancel", "--signal=USR2", ids[0]], check=True)
    subprocess.run(["scontrol", "requeue", ids[1]], check=True)
    output = finish(proc, 300)
    assert proc.returncode == 0, output[-3000:]

    for job, signal_name in ((0, "SIGUSR2"), (1, "SIGTERM")):
        run_dir = job_dir(sweep, job)
        summary = read_summary(run_dir)
        assert summary["status"] == "completed" and summary["steps"] == STEPS
        stopped = summary["resumed_from_step"]
        assert isinstance(stopped, int) and 0 < stopped < STEPS
        log = (run_dir / "train.log").read_text()
        assert f"Received {signal_name}" in log and "SLURM restart 1 of job" in log
        assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one per attempt
        assert_same_run(job_dir(sweep, 2), run_dir, STEPS, stopped_at=stopped, b_logs_every=10)
        assert_same_grad_flow(job_dir(sweep, 2), run_dir)
    assert "SLURM restart" not in (job_dir(sweep, 2) / "train.log").read_text()
    assert "this job is preempted" in submitit_logs(sweep)

    report = json.loads((sweep / "sweep_report.json").read_text())
    assert report["counts"]["completed"] == 3 and sum(report["counts"].values()) == 3
    # threads follow the allocation on a node that pins no CPUs (TaskPlugin=task/none, 2 cores here)
    assert "| 1 torch thread (SLURM_CPUS_PER_TASK=1)" in (job_dir(sweep, 2) / "train.log").read_text()
    # one line says states come from squeue; no warning per poll
    assert output.count("sacct") == 1 and "Bypassing" not in output, output


def test_time_limit_requeues_and_resumes_exactly(tmp_path):
    """timeout_min=1 for ~30 s of training: SLURM sends USR2 signal_delay_s before the limit, the job
    checkpoints, submitit requeues it, and the attempts add up to the uninterrupted run (run beside it on
    the other core, with the same one thread).

    slurmctld checks time limits every 30 s and signals once now + 30 s >= end - signal_delay_s: with a
    60 s limit and a delay of 29 s, each attempt gets the signal 1-31 s after it starts, well before the
    limit itself, so a 30 s run is cut at least once."""
    steps = 12000
    run = [f"trainer.max_steps={steps}", "checkpoint.every_n_steps=500", "trainer.val_check_interval=1000",
           "callbacks.grad_flow.every_n_steps=1000", "callbacks.gate_stats.every_n_steps=1000"]
    sweep, reference = tmp_path / "sweep", tmp_path / "reference"
    proc = launch(sweep, *run, "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=29")
    local = subprocess.Popen([sys.executable, "-m", "rnn_gradients.train", *RUN, *run, "num_threads=1", f"hydra.run.dir={reference}"],
                             cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    output = finish(proc, 400)
    assert proc.returncode == 0, output[-3000:]
    assert local.wait(timeout=400) == 0, local.stderr.read()[-2000:]

    assert "this job is timed-out" in submitit_logs(sweep)
    summary = read_summary(job_dir(sweep, 0))
    assert summary["status"] == "completed" and summary["steps"] == steps and summary["resumed_from_step"]
    log = (job_dir(sweep, 0) / "train.log").read_text()
    stops = {int(line.rsplit("Checkpoint at step ", 1)[1].split()[0]) for line in log.splitlines() if "Checkpoint at step" in line}
    # every cut in training saved its step; a signal before training started (imports) costs no step
    assert stops, "training ended before SLURM's time-limit signal: raise `steps`"
    assert log.count("SLURM restart") >= len(stops)
    assert_same_run(reference, job_dir(sweep, 0), steps, stopped_at=stops, b_logs_every=10)
    assert_same_grad_flow(reference, job_dir(sweep, 0))


def test_cancelled_job_is_reported_and_resumes_by_hand(tmp_path):
    """scancel ends a job for good: the launcher does not stop waiting for the others, the report says
    `interrupted` with the step, and re-launching the sweep with resume=true finishes it exactly."""
    sweep = tmp_path / "sweep"
    proc = launch(sweep, f"trainer.max_steps={STEPS}", "seed=0,1")
    wait_for(lambda: checkpointed(job_dir(sweep, 0)), "job 0 to checkpoint", 120, proc)
    subprocess.run(["scancel", slurm_ids(sweep)[0]], check=True)
    output = finish(proc, 300)
    assert proc.returncode == 1, output[-3000:]  # something did not finish, and the exit code says so
    cancelled, other = read_summary(job_dir(sweep, 0)), read_summary(job_dir(sweep, 1))
    assert cancelled["status"] == "interrupted" and cancelled["interrupted_by"] == "SIGTERM"
    assert other["status"] == "completed" and other["steps"] == STEPS
    counts = json.loads((sweep / "sweep_report.json").read_text())["counts"]
    assert counts["interrupted"] == 1 and counts["completed"] == 1

    rebuilt = subprocess.run([sys.executable, "-m", "rnn_gradients.sweep_report", str(sweep)], capture_output=True, text=True)
    assert rebuilt.returncode == 1 and f"| {job_dir(sweep, 0).name} | interrupted |" in rebuilt.stdout

    again = launch(sweep, f"trainer.max_steps={STEPS}", "seed=0,1", "resume=true")
    output = finish(again, 300)
    assert again.returncode == 0, output[-3000:]
    resumed = read_summary(job_dir(sweep, 0))
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == cancelled["steps"]
    assert read_summary(job_dir(sweep, 1)) == other  # finished: skipped, untouched
    reference = tmp_path / "reference"
    local = run_cli([*RUN, f"trainer.max_steps={STEPS}", "num_threads=1", "trainer.log_every_n_steps=1",
                     f"hydra.run.dir={reference}"], cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-2000:]
    assert_same_run(reference, job_dir(sweep, 0), STEPS, stopped_at=cancelled["steps"], b_logs_every=10)


def test_report_is_refreshed_by_jobs_that_end_after_the_launcher(tmp_path):
    """The launcher is killed while its jobs run on; each job refreshes the report when it ends."""
    sweep = tmp_path / "sweep"
    proc = launch(sweep, "trainer.max_steps=400", "seed=0,1")
    wait_for(lambda: len(slurm_ids(sweep)) == 2, "both jobs to be submitted", 60, proc)
    proc.kill()
    proc.wait()
    wait_for(lambda: not subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.strip(),
             "the jobs to end", 180)
    report = json.loads((sweep / "sweep_report.json").read_text())
    assert report["counts"]["completed"] == 2, report
    assert [job["steps"] for job in report["jobs"]] == [400, 400]


def test_single_sbatch_run_resumes_after_requeue(tmp_path):
    """The README's recipe for one run under sbatch: a fixed run directory, `--requeue`, nothing else."""
    run_dir = tmp_path / "run"
    command = " ".join([sys.executable, "-m", "rnn_gradients.train", *RUN, f"trainer.max_steps={STEPS}", f"hydra.run.dir={run_dir}"])
    submitted = subprocess.run(["sbatch", "--parsable", "--requeue", "-c", "1", "--mem=1G", "-o", str(tmp_path / "slurm-%j.out"),
                                f"--chdir={tmp_path}", "--wrap", command], capture_output=True, text=True, check=True)
    job_id = submitted.stdout.strip().split(";")[0]
    wait_for(lambda: checkpointed(run_dir), "the run to checkpoint", 120)
    subprocess.run(["scontrol", "requeue", job_id], check=True)

    release = Releaser()

    def ended() -> bool:
        release()
        state = subprocess.run(["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()
        return state in ("COMPLETED", "FAILED", "CANCELLED", "")

    wait_for(ended, "the requeued run to end", 180)
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["steps"] == STEPS, summary
    assert 0 < summary["resumed_from_step"] < STEPS
    assert "SLURM restart 1 of job" in (run_dir / "train.log").read_text()
