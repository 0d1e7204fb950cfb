"""Everything the SLURM launcher does to submitit's internals, in one place, for the submitit versions
it was checked against (SUPPORTED_SUBMITIT, pinned the same in pyproject.toml).

submitit has no public hook for either change the launcher needs, so both reach inside it:
- a SlurmInfoWatcher subclass that reads `squeue` when `sacct` fails (it overrides `update` and `is_done`
  and uses the watcher's private `_registered`, `_finished`, `_info_dict`, `_num_calls`,
  `_last_status_check` and `_make_command`);
- the class attributes `SlurmJob.watcher` and `SlurmJob.results`, swapped for one launch, since Hydra's
  plugin builds its executor and jobs inside `launch()`.
A submitit outside the range refuses to launch (UnsupportedSubmitit) instead of failing half-way.
Imported only when a sweep launches: the command line stays free of submitit.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from typing import Any

from packaging.specifiers import SpecifierSet

from rnn_gradients import cluster

log = logging.getLogger(__name__)

SUPPORTED_SUBMITIT = ">=1.5,<1.6"  # checked with submitit 1.5.4 (tests/test_slurm.py); pyproject.toml pins the same

class UnsupportedSubmitit(RuntimeError):
    """The installed submitit is outside SUPPORTED_SUBMITIT."""


def require_supported_submitit(found: str | None = None) -> None:
    """Refuse a submitit whose internals this adapter was not checked against (`found`: its version,
    default the installed one)."""
    found = installed_version("submitit") if found is None else found
    if found not in SpecifierSet(SUPPORTED_SUBMITIT):
        raise UnsupportedSubmitit(f"hydra/launcher=slurm needs submitit{SUPPORTED_SUBMITIT}, found submitit {found} "
                                  f"(pip install 'submitit{SUPPORTED_SUBMITIT}')")


@contextmanager
def patched_slurm_jobs(on_uncompleted: Callable[[Any], Any], delay_s: int = 60,
                       submitted: Callable[[Any], Any] | None = None) -> Iterator[None]:
    """For the duration: every SlurmJob polls through the squeue-fallback watcher, and its `results()`
    returns [on_uncompleted(job)] for a job that ended without a result instead of raising; with
    `submitted`, `results()` does not wait at all and returns [submitted(job)] (hydra.launcher.wait=false)."""
    require_supported_submitit()
    from submitit.slurm.slurm import SlurmJob

    watcher, results = SlurmJob.watcher, SlurmJob.results
    patched_results = results_or_placeholder(results, on_uncompleted) if submitted is None else (lambda job: [submitted(job)])
    SlurmJob.watcher, SlurmJob.results = make_watcher(delay_s), patched_results
    try:
        yield
    finally:
        SlurmJob.watcher, SlurmJob.results = watcher, results


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
            return self.get_state(job_id, mode=mode).upper() not in cluster.SLURM_STATES_STILL_RUNNING

    return SqueueFallbackWatcher(delay_s=delay_s)


def squeue_states(job_ids: Sequence[str], wanted: set[str]) -> dict[str, dict[str, str]]:
    """{job id: {"State": ...}} for `wanted`, as submitit's watcher keeps them; a job squeue no longer knows
    has ended: state GONE."""
    seen = cluster.squeue_states(job_ids)
    if seen is None:
        log.debug("squeue failed")
        return {}
    return {job: {"State": seen.get(job, "GONE")} for job in wanted}


def results_or_placeholder(results: Callable[[Any], list[Any]], on_uncompleted: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """Wrap SlurmJob.results: for a job that ended without a result, [on_uncompleted(job)]."""
    from submitit.core.utils import UncompletedJobError

    def wrapped(job: Any) -> list[Any]:
        try:
            return results(job)
        except UncompletedJobError:
            return [on_uncompleted(job)]

    return wrapped
