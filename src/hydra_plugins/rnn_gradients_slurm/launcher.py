"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher, made to wait out a real cluster.

Hydra's plugin launches the jobs well; two things it leaves to luck are fixed here:
- it collects results job by job with `job.results()`, which raises for a job that ended without one
  (cancelled, killed, a node failure): the sweep stopped waiting for every later job. Such a job is
  reported from its summary.json (or as missing) instead, and the launcher waits for the rest.
- submitit learns a job's state from `sacct`; on a cluster without accounting that fails, warns on every
  poll, and never sees a job end without a result. The watcher says so once and asks `squeue`.
Both reach into submitit, for the versions submitit_adapter names and pyproject.toml pins.
A job that SLURM requeues keeps its id, so the launcher simply waits for the attempt that ends it
(resuming is the run's business: rnn_gradients.run).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from hydra_plugins.rnn_gradients_slurm.submitit_adapter import patched_slurm_jobs
from rnn_gradients import contract
from rnn_gradients.io_utils import write_json_atomic

log = logging.getLogger(__name__)


def placeholder(job: Any) -> JobReturn:
    """The result of a job that ended without one: lets the sweep go on (the sweep report shows that
    job from its own summary.json: interrupted, failed, or missing)."""
    log.warning("SLURM job %s ended without a result (state %s): see the sweep report", job.job_id, job.state)
    ret = JobReturn()
    ret.status, ret.return_value = JobStatus.COMPLETED, None
    return ret


class ResumingSlurmLauncher(SlurmLauncher):
    """Hydra's SlurmLauncher with the squeue-fallback watcher and the placeholder results (both reach
    into submitit: submitit_adapter); with wait=false it returns once every job is queued."""

    def __init__(self, fail_fast: bool = False, wait: bool = True, **params: Any) -> None:
        super().__init__(**params)  # the rest are submitit's; fail_fast is the jobs' business (rnn_gradients.fail_fast)
        self.fail_fast, self.wait = fail_fast, wait

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        if self.wait:
            with patched_slurm_jobs(placeholder):
                return super().launch(job_overrides, initial_job_idx)
        submitted: list[str] = []

        def queued(job: Any) -> JobReturn:
            submitted.append(str(job.job_id))
            ret = JobReturn()
            ret.status, ret.return_value = JobStatus.COMPLETED, None
            return ret

        with patched_slurm_jobs(placeholder, submitted=queued):
            returns = super().launch(job_overrides, initial_job_idx)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        ids = {str(initial_job_idx + i): job_id for i, job_id in enumerate(submitted)}
        previous = json.loads((sweep_dir / contract.SWEEP_SLURM_JOBS).read_text()) if (sweep_dir / contract.SWEEP_SLURM_JOBS).is_file() else {}
        write_json_atomic(sweep_dir / contract.SWEEP_SLURM_JOBS, {**previous, **ids})
        log.info("Submitted %d jobs to SLURM (%s); not waiting (hydra.launcher.wait=false). Sweep folder: %s",
                 len(submitted), " ".join(submitted), sweep_dir)
        log.info("Follow it, from any shell, after logging out too: python -m rnn_gradients.sweep_report %s --watch", sweep_dir)
        return returns
