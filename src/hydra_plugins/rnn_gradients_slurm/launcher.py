"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher, made to wait out a real cluster.

Hydra's plugin launches the jobs well; two things it leaves to luck are fixed here:
- it collects results job by job with `job.results()`, which raises for a job that ended without one
  (cancelled, killed, a node failure): the sweep stopped waiting for every later job. Such a job is
  reported from its summary.json (or as missing) instead, and the launcher waits for the rest.
- submitit learns a job's state from `sacct`; on a cluster without accounting that fails, warns on every
  poll, and never sees a job end without a result. The watcher below says so once and asks `squeue`.
A job that SLURM requeues keeps its id, so the launcher simply waits for the attempt that ends it
(resuming is the run's business: rnn_gradients.run).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

log = logging.getLogger(__name__)

# SLURM states of a job that may still produce a result (squeue's long names).
UNFINISHED = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
              "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "PREEMPTED", "READY", "UNKNOWN", "STOPPED"}


def make_watcher(delay_s: int = 60) -> Any:
    """A submitit SlurmInfoWatcher that falls back to squeue when sacct fails (built lazily: submitit
    loads only when a sweep launches)."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    class SqueueFallbackWatcher(SlurmInfoWatcher):
        use_squeue = False

        def update(self) -> None:
            ids = sorted({x.split("_")[0] for x in self._registered - self._finished})
            if not ids:
                return
            self._num_calls += 1
            if not self.use_squeue:
                try:
                    out = subprocess.run(self._make_command(), capture_output=True, text=True, check=True, timeout=60)
                    self._info_dict.update(self.read_info(out.stdout))
                except (OSError, subprocess.SubprocessError) as error:
                    detail = getattr(error, "stderr", "") or str(error)
                    log.info("sacct is unavailable (%s): job states come from squeue", detail.strip().splitlines()[0] if detail.strip() else error)
                    self.use_squeue = True
            if self.use_squeue:
                self._info_dict.update(squeue_states(ids, self._registered - self._finished))
            self._last_status_check = time.time()
            for job_id in self._registered - self._finished:
                if self.is_done(job_id, mode="cache"):
                    self._finished.add(job_id)

        def is_done(self, job_id: str, mode: str = "standard") -> bool:
            return self.get_state(job_id, mode=mode).upper() not in UNFINISHED

    return SqueueFallbackWatcher(delay_s=delay_s)


def squeue_states(job_ids: Sequence[str], wanted: set[str]) -> dict[str, dict[str, str]]:
    """{job id (array tasks as <id>_<task>): {"State": ...}} for `wanted`; a job squeue no longer knows
    has left the controller's memory (MinJobAge after it ended), so it is finished: state GONE."""
    cmd = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T", f"--jobs={','.join(job_ids)}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as error:
        log.debug("squeue failed: %s", error)
        return {}
    seen = dict(line.strip().split("|", 1) for line in out.splitlines() if "|" in line)
    return {job: {"State": seen.get(job, "GONE")} for job in wanted}


def results_or_placeholder(results: Callable[[Any], list[JobReturn]]) -> Callable[[Any], list[JobReturn]]:
    """Wrap SlurmJob.results: for a job that ended without a result, a placeholder that lets the sweep go
    on (the sweep report shows that job from its own summary.json: interrupted, failed, or missing)."""
    from submitit.core.utils import UncompletedJobError

    def wrapped(job: Any) -> list[JobReturn]:
        try:
            return results(job)
        except UncompletedJobError:
            return [placeholder(job)]

    return wrapped


def placeholder(job: Any) -> JobReturn:
    log.warning("SLURM job %s ended without a result (state %s): see the sweep report", job.job_id, job.state)
    ret = JobReturn()
    ret.status, ret.return_value = JobStatus.COMPLETED, None
    return ret


class ResumingSlurmLauncher(SlurmLauncher):
    """Hydra's SlurmLauncher with the watcher and result collection above."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from submitit.slurm.slurm import SlurmJob

        # The plugin builds its executor and jobs inside launch(), with no hook for either: the watcher
        # (a class attribute shared by every SlurmJob) and results() are swapped for the call.
        watcher, results = SlurmJob.watcher, SlurmJob.results
        SlurmJob.watcher, SlurmJob.results = make_watcher(), results_or_placeholder(results)
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            SlurmJob.watcher, SlurmJob.results = watcher, results
